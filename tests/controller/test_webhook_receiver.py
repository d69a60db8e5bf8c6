"""The webhook receiver under hostile input, over real HTTP (uvicorn with `tether serve`'s protocol class).

The controller is built but its worker is not started, so queued pushes stay queued (the 503
test fills the queue) and nothing here depends on git: every answer comes from the receiver.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.controller.conftest import Receiver, settings_for, webhook_secret
from tests.webhook_deliveries import CORPORA, OWN, PROVIDERS, SECRETS, headers, payload, retarget, secret_data
from tether.cluster import Cluster
from tether.controller.controller import Controller
from tether.devcluster.passstore import PassStore

CAP = 64 * 1024
READ_TIMEOUT = 1.0
QUEUE = 3
CANARY = "canary-body-9f3b2a"


@pytest.fixture
async def receiver(
    kube: Cluster, crds_installed: None, namespace: str, tmp_path: Path, pass_store: PassStore
) -> AsyncIterator[Receiver]:
    await webhook_secret(kube, namespace, secret_data())
    options: dict[str, Any] = {
        "webhook_max_body": CAP,
        "webhook_read_timeout": READ_TIMEOUT,
        "webhook_queue": QUEUE,
    }
    controller = Controller(settings_for(namespace, tmp_path / "state", pass_store, **options), kube)
    controller.webhook_secret.start()
    await asyncio.wait_for(controller.webhook_secret.synced.wait(), 30)
    try:
        async with Receiver(controller) as served:
            yield served
    finally:
        await controller.webhook_secret.close()


def github_push(files: list[str] | None = None) -> bytes:
    return retarget("github", "http://127.0.0.1:1/r.git", before="a" * 40, after="b" * 40, files=files or [])


async def post(receiver: Receiver, body: bytes, given: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(f"{receiver.url}/api/webhook", content=body, headers=given)


async def test_a_declared_body_over_the_cap_is_refused_before_it_is_read(receiver: Receiver) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
    writer.write(
        b"POST /api/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-GitHub-Event: push\r\nContent-Length: 104857600\r\n\r\n"
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), 5)  # no body byte was sent: the header alone decides
    assert answer.startswith(b"HTTP/1.1 413"), answer
    writer.close()


async def test_a_streamed_body_is_read_no_further_than_the_cap(receiver: Receiver) -> None:
    sock = socket.create_connection(("127.0.0.1", receiver.port))
    sock.settimeout(5)
    sock.sendall(
        b"POST /api/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-GitHub-Event: push\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 8192
    sent = 0
    answer = b""
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    while sent < 100 * CAP:  # a client that would send 6 MiB
        try:
            sock.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        except BlockingIOError:
            await asyncio.sleep(0.01)
        try:
            answer += sock.recv(4096)
        except BlockingIOError:
            pass
        if answer:
            break
        await asyncio.sleep(0)
    deadline = loop.time() + 5
    while b"\r\n\r\n" not in answer and loop.time() < deadline:
        try:
            answer += sock.recv(4096)
        except BlockingIOError:
            await asyncio.sleep(0.01)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 4 * CAP, sent  # answered once past the cap (plus what the socket buffers held)


async def test_a_client_slow_with_its_headers_is_cut_off(receiver: Receiver) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
    writer.write(b"POST /api/webhook HTTP/1.1\r\nHost: x\r\n")  # and never the rest
    await writer.drain()
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(reader.read(), READ_TIMEOUT + 5) == b""  # closed, no answer
    assert asyncio.get_running_loop().time() - started < READ_TIMEOUT + 2


async def test_a_client_slow_with_its_body_gets_408(receiver: Receiver) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
    writer.write(
        b"POST /api/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'X-GitHub-Event: push\r\nContent-Length: 100\r\n\r\n{"ref":'
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), READ_TIMEOUT + 5)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    writer.close()


def _malformed() -> list[tuple[str, str, bytes]]:
    bbs = json.loads((OWN / "bitbucketserver/repo-refs-changed.json").read_text())
    ado = payload("azuredevops")
    gh = payload("github")
    bad_links = json.loads(json.dumps(bbs))
    bad_links["repository"]["links"]["clone"] = {"href": "http://x/r.git"}
    no_repo = {k: v for k, v in gh.items() if k != "repository"}
    empty_updates = json.loads(json.dumps(ado))
    empty_updates["resource"]["refUpdates"] = []
    null_in_list = json.loads(json.dumps(gh))
    null_in_list["commits"] = [None]
    number_ref = json.loads(json.dumps(gh))
    number_ref["ref"] = 42
    return [
        ("bitbucketserver", "non-array clone links", json.dumps(bad_links).encode()),
        ("github", "missing repository", json.dumps(no_repo).encode()),
        ("azuredevops", "empty refUpdates", json.dumps(empty_updates).encode()),
        ("github", "a null in a list", json.dumps(null_in_list).encode()),
        ("github", "a number for the ref", json.dumps(number_ref).encode()),
        ("github", "malformed JSON", b'{"ref": "refs/heads/main", ' + CANARY.encode()),
        ("github", "JSON nested ten thousand deep", b"[" * 10_000 + b"]" * 10_000),
    ]


@pytest.mark.parametrize(("provider", "what", "body"), _malformed(), ids=[m[1] for m in _malformed()])
async def test_malformed_payloads_get_a_short_400_and_are_not_logged(
    receiver: Receiver, provider: str, what: str, body: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = await post(receiver, body, headers(provider, body, SECRETS[provider]))
    assert answer.status_code == 400, (what, answer.text)
    assert set(answer.json()) == {"error"} and len(answer.json()["error"]) < 300
    assert CANARY not in answer.text and CANARY not in capsys.readouterr().err


async def test_unknown_events_providers_and_content_types_get_400(receiver: Receiver) -> None:
    body = github_push()
    unknown_event = await post(receiver, body, headers("github", body, SECRETS["github"], {"X-GitHub-Event": "x-y"}))
    assert unknown_event.status_code == 400
    no_provider = await post(receiver, body, {"Content-Type": "application/json"})
    assert no_provider.status_code == 400 and "provider" in no_provider.json()["error"]
    signed = headers("github", body, SECRETS["github"], {"Content-Type": "text/plain"})
    assert (await post(receiver, body, signed)).status_code == 400


async def test_pings_answer_200_other_events_202_and_pull_requests_are_kept(receiver: Receiver) -> None:
    ping = (CORPORA / "github-webhook-payloads/ping/payload.json").read_bytes()
    answer = await post(receiver, ping, headers("github", ping, SECRETS["github"], {"X-GitHub-Event": "ping"}))
    assert answer.status_code == 200, answer.text
    create = (CORPORA / "github-webhook-payloads/create/payload.json").read_bytes()
    answer = await post(receiver, create, headers("github", create, SECRETS["github"], {"X-GitHub-Event": "create"}))
    assert (answer.status_code, answer.json()["status"]) == (202, "ignored")
    opened = (CORPORA / "github-webhook-payloads/pull_request/opened.payload.json").read_bytes()
    given = headers("github", opened, SECRETS["github"], {"X-GitHub-Event": "pull_request"})
    assert (await post(receiver, opened, given)).status_code == 202
    kept = list(receiver.controller.webhooks.pull_requests)
    assert [(p.action, p.provider) for p in kept] == [("opened", "github")]
    assert receiver.controller.webhooks.waiting == 0  # a pull request triggers nothing yet


async def test_a_full_queue_answers_503_with_retry_after(receiver: Receiver) -> None:
    body = github_push()
    signed = headers("github", body, SECRETS["github"])
    codes = [(await post(receiver, body, signed)).status_code for _ in range(QUEUE)]
    assert codes == [202] * QUEUE
    full = await post(receiver, body, signed)
    assert full.status_code == 503 and full.headers["Retry-After"].isdigit()
    assert receiver.controller.webhooks.gate.refused == 1


# ------------------------------------------------------------------ fuzzing

SEEDS = [(p, json.loads(retarget(p, "http://127.0.0.1:1/r.git", before="a" * 40, after="b" * 40))) for p in PROVIDERS]
FUZZ_CASES = 10_000


def _mutations(value: Any, rng: random.Random) -> Any:
    """One random structural mutation somewhere in ``value``: a type flipped, a key dropped, a null, a list emptied."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        out = dict(value)
        roll = rng.random()
        if roll < 0.15:
            del out[key]
        else:
            out[key] = _mutations(value[key], rng)
        return out
    if isinstance(value, list) and value and rng.random() < 0.8:
        out_list = list(value)
        index = rng.randrange(len(out_list))
        out_list[index] = _mutations(out_list[index], rng) if rng.random() < 0.7 else None
        return out_list
    return rng.choice(
        [
            None,
            0,
            -1,
            1.5,
            True,
            "",
            "x" * rng.randrange(1, 300),
            [],
            {},
            [None],
            {"a": None},
            "\x00",
            "refs/heads/--upload-pack=x",
        ]
    )


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[str, bytes]:
    """A provider's real payload with 1-4 random mutations; sometimes cut short, now and then raw bytes.

    Hypothesis draws the provider and a seed; the mutations come from that seed (two draws per
    case keep 10,000 cases quick to generate, and each case is still reproducible from its seed).
    """
    provider, seed = draw(st.sampled_from(SEEDS))
    rng = random.Random(draw(st.integers(0, 2**32)))
    data = seed
    for _ in range(rng.randint(1, 4)):
        data = _mutations(data, rng)
    body = json.dumps(data).encode()
    roll = rng.random()
    if roll < 0.15:
        body = body[: rng.randrange(max(1, len(body)))]
    elif roll < 0.2:
        body = rng.randbytes(rng.randrange(2048))
    return provider, body


async def test_ten_thousand_mutated_deliveries_never_get_a_5xx(receiver: Receiver) -> None:
    """Every provider's real payload, mutated 10,000 times in all, correctly signed (so parsing is reached).

    They go to the served app through its ASGI interface (the same app, the same receiver, without
    10,000 TCP round trips); the connection-level limits have their own tests above. Afterwards the
    server still answers over HTTP.
    """
    cases: list[tuple[str, bytes]] = []

    @settings(max_examples=FUZZ_CASES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(deliveries())
    def collect(case: tuple[str, bytes]) -> None:
        cases.append(case)

    collect()
    assert len(cases) >= FUZZ_CASES * 0.9
    receiver.controller.webhooks.gate.limit = len(cases) * 4  # room for all: a 503 is not the point
    seen: dict[int, int] = {}
    app = receiver.server.config.loaded_app if receiver.server.config.loaded else receiver.server.config.app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver", timeout=10) as client:
        for provider, body in cases:
            answer = await client.post("/api/webhook", content=body, headers=headers(provider, body, SECRETS[provider]))
            seen[answer.status_code] = seen.get(answer.status_code, 0) + 1
    assert not [code for code in seen if code >= 500], seen
    assert seen.get(400, 0) > len(cases) // 4, seen  # most mutations are refused as malformed
    queued = receiver.controller.webhooks.take()
    assert len(queued) >= seen.get(202, 0) // 2  # what was accepted reached the queue
    await receiver.controller.webhooks.handle(queued)  # and the worker's pass over all of it raises nothing
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(f"{receiver.url}/healthz")).status_code == 200
