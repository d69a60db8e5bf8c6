"""The front app: what answers on `tether serve`'s address.

``POST /api/webhook`` is answered here (``webhook.receiver``); every other request goes to
``fallback``. In `tether serve` the front app runs in a process of its own (``server.process``)
and ``fallback`` is an ``UpstreamProxy`` to the controller's app (``server.app``) on a Unix socket:
a provider's delivery is then parsed, checked and answered without ever waiting for the
controller's interpreter lock, however busy the controller is. In tests the fallback can be the
controller's app itself, in the same process.
"""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tether.server.webhook.receiver import Deliver, ReceiverLimits, SecretsSource, add_webhook_route

# Headers that describe one connection, not the request: never forwarded (RFC 9110 §7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
UPSTREAM_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def create_front_app(limits: ReceiverLimits, secrets: SecretsSource, deliver: Deliver, fallback: ASGIApp) -> Starlette:
    """The webhook receiver, with every other path served by ``fallback``.

    Plain Starlette, not FastAPI: the front process then loads neither FastAPI nor pydantic
    (about 15 MiB less resident memory).
    """
    app = Starlette()
    add_webhook_route(app, limits, secrets, deliver)
    app.mount("/", fallback)
    return app


class UpstreamProxy:
    """An ASGI app forwarding each HTTP request to the server on a Unix socket, streaming both ways.

    The client's address goes along in ``X-Forwarded-For``. An upstream that does not answer gives
    a short JSON 502; the proxy itself keeps no body in memory.
    """

    def __init__(self, socket_path: str) -> None:
        self._client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=socket_path),
            base_url="http://tether",
            timeout=UPSTREAM_TIMEOUT,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        headers = [(k, v) for k, v in request.headers.raw if k.decode("latin-1").lower() not in HOP_BY_HOP]
        if request.client is not None:
            headers.append((b"x-forwarded-for", request.client.host.encode("latin-1")))
        path = scope.get("root_path", "") + scope["path"]
        outgoing = self._client.build_request(
            request.method,
            httpx.URL(path=path, query=scope.get("query_string", b"")),
            headers=headers,
            content=request.stream(),
        )
        try:
            answer = await self._client.send(outgoing, stream=True)
        except httpx.HTTPError:
            await JSONResponse({"error": "the controller did not answer"}, status_code=502)(scope, receive, send)
            return
        response = StreamingResponse(
            answer.aiter_raw(), status_code=answer.status_code, background=BackgroundTask(answer.aclose)
        )
        response.raw_headers = [(k, v) for k, v in answer.headers.raw if k.decode("latin-1").lower() not in HOP_BY_HOP]
        await response(scope, receive, send)

    async def aclose(self) -> None:
        await self._client.aclose()
