"""``POST /api/webhook``: one endpoint for every git provider, answering before any git or cluster work.

The order is fixed, so nothing costly happens before a delivery has proved where it comes from:

1. **Size.** A ``Content-Length`` over the cap (``--webhook-max-body``, 1 MiB by default) is
   refused with 413 before the body is read; a body that grows past the cap is refused as soon as
   it does, and not read further. The body must arrive within ``--webhook-read-timeout`` (408);
   the headers have the same deadline (``tether.server.protocol``).
2. **Provider**, from its headers (``providers.detect``); none: 400.
3. **Authenticity** (``providers.verify``): a configured secret must match, compared in constant
   time, or 401. A provider with no secret configured is refused (401) unless the operator turned
   unauthenticated webhooks on.
4. **Parse** (``providers.parse``): malformed JSON, wrong types, an unknown event: 400 with a short
   JSON error. The body is never logged.
5. **Answer.** A ping: 200. Pushes and pull requests are handed to the controller's webhook
   worker and answered 202 at once; a full queue: 503 with ``Retry-After``. Any other event: 202,
   nothing done.

The route needs three things only: its limits, the secrets of the moment and a way to hand over
a delivery. So it runs in `tether serve`'s front process (``tether.server.front``), away from the
controller's interpreter lock, and beside an in-process controller in tests.

Nothing a client sends produces a 5xx other than that 503: an unexpected error is logged with
its traceback and answered 400, and the worker runs apart from the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from tether.server.webhook.events import Event, Ignored, Ping, PullRequest, Push, WebhookError
from tether.server.webhook.providers import detect, parse, verify
from tether.server.webhook.secrets import WebhookSecrets

if TYPE_CHECKING:
    from tether.controller.settings import Settings

log = structlog.get_logger(__name__)

PATH = "/api/webhook"
RETRY_AFTER_SECONDS = 5
SECRETS_WAIT = 5.0  # seconds a delivery arriving at start-up waits for the secrets to be read


@dataclass(frozen=True)
class ReceiverLimits:
    """The receiver's settings (``--webhook-*``), small enough to hand to another process."""

    max_body: int = 1024 * 1024
    read_timeout: float = 10.0
    allow_unauthenticated: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> ReceiverLimits:
        return cls(settings.webhook_max_body, settings.webhook_read_timeout, settings.webhook_allow_unauthenticated)


SecretsSource = Callable[[], WebhookSecrets | None]  # None: not read yet
Deliver = Callable[[Sequence[Event]], bool]  # False: no room, answer 503


class _TooLarge(Exception):
    pass


def add_webhook_route(app: Starlette, limits: ReceiverLimits, secrets: SecretsSource, deliver: Deliver) -> None:
    """Mount ``POST /api/webhook``: checked against ``secrets()``, accepted pushes handed to ``deliver``."""

    async def webhook(request: Request) -> JSONResponse:
        try:
            return await _receive(request, limits, secrets, deliver)
        except Exception:  # a bug must answer like bad input, never with a 5xx or a dead server
            log.exception("webhook: delivery could not be handled")
            return _answer(400, "the delivery could not be handled")

    app.add_route(PATH, webhook, methods=["POST"])


async def _receive(request: Request, limits: ReceiverLimits, secrets: SecretsSource, deliver: Deliver) -> JSONResponse:
    cap = limits.max_body
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            return _answer(400, "Content-Length is not a number")
        if int(declared) > cap:
            return _answer(413, f"the body is over the limit of {cap} bytes", close=True)
    try:
        body = await asyncio.wait_for(_read_capped(request, cap), limits.read_timeout)
    except _TooLarge:
        return _answer(413, f"the body is over the limit of {cap} bytes", close=True)
    except TimeoutError:
        return _answer(408, f"the body did not arrive within {limits.read_timeout:g}s", close=True)
    provider = detect(request.headers)
    if provider is None:
        return _refused(400, "unknown webhook: no provider's event header (see docs/webhooks.md)", None)
    known = await _secrets(secrets)
    if known is None:
        return _retry_later("the webhook secrets are not read yet; retry later", provider)
    try:
        verify(provider, request.headers, body, known, allow_unauthenticated=limits.allow_unauthenticated)
        events = parse(provider, request.headers, body)
    except WebhookError as exc:
        return _refused(exc.status, exc.message, provider)
    if events and all(isinstance(e, Ping) for e in events):
        log.info("webhook: ping", provider=provider)
        return _answer(200, None, status="pong")
    wanted = [e for e in events if isinstance(e, Push | PullRequest)]
    if wanted and not deliver(wanted):
        return _retry_later("too many deliveries waiting; retry later", provider)
    pushes = sum(1 for e in wanted if isinstance(e, Push))
    ignored = [e.event for e in events if isinstance(e, Ignored)]
    log.info("webhook: accepted", provider=provider, pushes=pushes, ignored=ignored or None)
    return _answer(202, None, status="accepted" if wanted else "ignored", pushes=pushes)


async def _secrets(secrets: SecretsSource) -> WebhookSecrets | None:
    """The secrets, waiting a little for them at start-up (a delivery then is not refused for nothing)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SECRETS_WAIT
    while (known := secrets()) is None and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return known


def _retry_later(message: str, provider: str) -> JSONResponse:
    log.warning("webhook: asked the sender to retry", provider=provider, reason=message)
    response = _answer(503, message)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


async def _read_capped(request: Request, cap: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise _TooLarge
    return bytes(body)


def _refused(status: int, message: str, provider: str | None) -> JSONResponse:
    log.info("webhook: refused", provider=provider, status=status, error=message)
    return _answer(status, message)


def _answer(code: int, error: str | None, *, close: bool = False, **fields: object) -> JSONResponse:
    content: dict[str, object] = {"error": error} if error is not None else dict(fields)
    response = JSONResponse(content, status_code=code)
    if close:
        response.headers["Connection"] = "close"  # the unread rest of the body is not waited for
    return response
