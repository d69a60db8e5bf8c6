"""`tether serve`: the controller, its HTTP server, and the front process that answers on its address.

The front process (``tether.server.process``) is started and supervised by this one; the user
runs, stops and configures one command.

Every setting is a flag and a ``TETHER_*`` environment variable (docs/controller.md lists
them). SIGTERM or SIGINT: stop taking work, let running operations save a resumable state,
and exit within 30 s (a watchdog ends the process if anything hangs past that).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

import click
import structlog

from tether.controller.settings import (
    DEFAULT_LISTEN,
    DEFAULT_NAMESPACE,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_POLL_JITTER,
    DEFAULT_STATUS_SETTLE,
    Settings,
)
from tether.paths import cache_root

log = structlog.get_logger(__name__)
STOP_DEADLINE = 30.0


async def run(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT; the controller starts after the CRDs are known to be installed."""
    # Imported here, not at the top: every other `tether` command would pay for them at start-up.
    import uvicorn

    from tether.cluster import Cluster
    from tether.controller.controller import Controller
    from tether.controller.install import install, installed
    from tether.server.app import create_app
    from tether.server.process import FrontProcess, listen
    from tether.server.webhook.receiver import ReceiverLimits

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    home = await Cluster.connect(settings.kubeconfig, settings.context, in_cluster=settings.in_cluster)
    async with home:
        if not await installed(home):
            log.warning("Tether's CRDs are missing; installing them", namespace=settings.namespace)
            await install(home, settings.namespace)
        controller = Controller(settings, home)
        sock = listen(*settings.host_port)
        with tempfile.TemporaryDirectory(prefix="tether-") as private:  # mode 0700: the controller's app
            upstream = os.path.join(private, "controller.sock")
            config = uvicorn.Config(create_app(controller), uds=upstream, log_level="warning", lifespan="off")
            server = uvicorn.Server(config)
            server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]  # ours, above
            # Its own thread and loop: /healthz answers however busy the controller's loop is.
            serving = threading.Thread(target=asyncio.run, args=(server.serve(),), name="http", daemon=True)
            serving.start()
            hooks = controller.webhooks
            front = FrontProcess(sock, ReceiverLimits.from_settings(settings), hooks.gate, hooks.accept, upstream)
            front.start()
            await controller.start()
            _collect_less()
            front.send_secrets(controller.webhook_secrets())
            controller.on_webhook_secrets = front.send_secrets
            host, port = sock.getsockname()[:2]
            click.echo(f"tether serve: watching namespace {settings.namespace}; http://{host}:{port}", err=True)
            await stop.wait()
            click.echo("tether serve: stopping", err=True)
            _watchdog(STOP_DEADLINE)
            await controller.stop()
            await asyncio.to_thread(front.stop)
            server.should_exit = True
            await asyncio.to_thread(serving.join, 5)
            sock.close()


def _collect_less() -> None:
    """Fewer and shorter cyclic garbage collections for the rest of the process's life.

    What start-up left alive (modules, settings, the first listings) is frozen out of every
    collection, and generation 0 is collected every 20,000 allocations instead of 700. The
    controller's garbage (JSON documents, request and response bodies) is freed by reference
    counting as it goes; the collector only looks for cycles, and with the defaults it spent about
    a seventh of a cold start's CPU rescanning live caches to find almost none (docs/controller.md).
    """
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _watchdog(seconds: float) -> None:
    """End the process if the graceful stop overruns (a hung call must not keep a pod from terminating)."""

    def expire() -> None:
        os.write(2, b"error: tether serve did not stop in time; exiting\n")
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


@click.command()
@click.option(
    "--namespace",
    "-n",
    default=DEFAULT_NAMESPACE,
    show_default=True,
    envvar="TETHER_NAMESPACE",
    help="The namespace of the Applications, Projects and cluster Secrets.",
)
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, envvar="TETHER_LISTEN", help="HTTP address.")
@click.option(
    "--poll-interval",
    type=float,
    default=DEFAULT_POLL_INTERVAL,
    show_default=True,
    envvar="TETHER_POLL_INTERVAL",
    help="Seconds between polls of each repository.",
)
@click.option(
    "--poll-jitter",
    type=float,
    default=DEFAULT_POLL_JITTER,
    show_default=True,
    envvar="TETHER_POLL_JITTER",
    help="Up to this many seconds are added to each poll interval.",
)
@click.option(
    "--database-url",
    default=None,
    envvar="TETHER_DATABASE_URL",
    help="Audit log: a SQLAlchemy URL (postgresql+psycopg://…); default SQLite in the state directory.",
)
@click.option("--max-compares", type=int, default=16, show_default=True, envvar="TETHER_MAX_COMPARES")
@click.option("--max-syncs", type=int, default=8, show_default=True, envvar="TETHER_MAX_SYNCS")
@click.option("--max-renders", type=int, default=4, show_default=True, envvar="TETHER_MAX_RENDERS")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), default=None, envvar="KUBECONFIG")
@click.option("--context", default=None, envvar="TETHER_CONTEXT")
@click.option("--in-cluster", is_flag=True, envvar="TETHER_IN_CLUSTER", help="Use the pod's service account.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="TETHER_STATE_DIR",
    help="Git and render caches, the SQLite audit log (default: <cache root>/controller).",
)
@click.option(
    "--password-store",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="PASSWORD_STORE_DIR",
    help="The `pass` store (default ~/.password-store).",
)
@click.option("--gnupg-home", type=click.Path(file_okay=False, path_type=Path), default=None, envvar="GNUPGHOME")
@click.option(
    "--sync-timeout",
    type=float,
    default=300.0,
    show_default=True,
    envvar="TETHER_SYNC_TIMEOUT",
    help="Seconds for each wait inside a sync (a wave's health, a hook).",
)
@click.option(
    "--status-settle",
    type=click.FloatRange(min=0.0),
    default=DEFAULT_STATUS_SETTLE,
    show_default=True,
    envvar="TETHER_STATUS_SETTLE",
    help="Seconds an app's status in motion (a sync running, health Progressing) waits before it is written; 0 writes every one.",
)
@click.option(
    "--webhook-max-body",
    type=click.IntRange(min=1024),
    default=1024 * 1024,
    show_default=True,
    envvar="TETHER_WEBHOOK_MAX_BODY",
    help="Bytes: a bigger webhook delivery is refused (413) without being read.",
)
@click.option(
    "--webhook-read-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    envvar="TETHER_WEBHOOK_READ_TIMEOUT",
    help="Seconds a client has for a request's headers, and again for its body.",
)
@click.option(
    "--webhook-queue",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    envvar="TETHER_WEBHOOK_QUEUE",
    help="Pushes waiting for the webhook worker; beyond that, deliveries get 503 and Retry-After.",
)
@click.option(
    "--webhook-allow-unauthenticated",
    is_flag=True,
    envvar="TETHER_WEBHOOK_ALLOW_UNAUTHENTICATED",
    help="Accept deliveries from providers with no secret configured (off: they get 401; docs/webhooks.md).",
)
@click.pass_context
def serve(ctx: click.Context, **options: Any) -> None:
    """Run the controller and its HTTP server (/healthz, /readyz, /metrics, POST /api/webhook) until SIGTERM."""
    guard = (ctx.find_root().obj or {}).get("signal_guard")
    if guard is not None:
        guard.restore()  # the one-second stop of one-shot commands does not suit a server
    state_dir = options.pop("state_dir") or cache_root() / "controller"
    settings = Settings(state_dir=state_dir, **options)
    asyncio.run(run(settings))
