"""The controller's FastAPI app: ``/healthz`` (the process answers), ``/readyz`` (the controller can do its
work) and ``/metrics``. In `tether serve` it answers on a private Unix socket, behind the front process
(``tether.server.front``), which answers ``POST /api/webhook`` itself and forwards everything else here.

Readiness is false while the controller's own informers cannot reach the API server, so an
outage shows here as well as in each app's conditions; it comes back by itself.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from tether.controller.controller import Controller


def create_app(controller: Controller, registry: CollectorRegistry | None = None) -> FastAPI:
    """The server for one controller; ``registry`` holds its metrics (a fresh one by default)."""
    registry = registry or CollectorRegistry()
    app = FastAPI(title="Tether", docs_url=None, redoc_url=None, openapi_url=None)

    def gauge(name: str, doc: str, read: Callable[[], float]) -> None:
        Gauge(name, doc, registry=registry).set_function(read)

    gauge("tether_apps", "Applications the controller knows.", lambda: len(controller.apps.objects))
    gauge("tether_queue_depth", "Apps waiting for a reconcile.", lambda: len(controller.queue))
    gauge("tether_reconciles_total", "Reconciles run since start.", lambda: controller.reconciles)
    gauge(
        "tether_compares_total", "Diffs against the live cache run since start.", lambda: controller.comparer.compares
    )
    gauge("tether_status_writes_total", "Status writes sent since start.", lambda: controller.writer.writes)
    gauge(
        "tether_operations_running",
        "Sync operations running now.",
        lambda: sum(1 for m in controller.memory.values() if m.operating),
    )
    gauge(
        "tether_cluster_writes_total",
        "Write requests (dry runs included) sent to the controller's own cluster.",
        lambda: controller.home.requests.snapshot().writes,
    )

    gauge("tether_event_writes_total", "Write requests sent for Events since start.", lambda: controller.events.writes)
    gauge(
        "tether_writes_pending",
        "Writes still to send: statuses held to settle, Events waiting or in flight.",
        lambda: controller.writer.waiting + controller.events.pending,
    )
    gauge(
        "tether_renders_total",
        "Renders performed (not served from the render cache).",
        lambda: controller.render_cache.stats.renders,
    )
    gauge(
        "tether_render_cache_hits_total",
        "Renders served from the render cache.",
        lambda: controller.render_cache.stats.hits,
    )
    hooks = controller.webhooks.stats
    gauge("tether_webhook_pushes_total", "Pushes taken from webhook deliveries.", lambda: hooks.pushes)
    gauge(
        "tether_webhook_batches_total",
        "Passes over the webhook queue (pushes per batch: coalescing).",
        lambda: hooks.batches,
    )
    gauge("tether_webhook_unmatched_total", "Pushes for repositories or refs no app uses.", lambda: hooks.unmatched)
    gauge("tether_webhook_refreshes_total", "Apps refreshed by a webhook (a changed input).", lambda: hooks.refreshed)
    gauge("tether_webhook_moves_total", "Apps moved to a pushed revision without a render.", lambda: hooks.moved)
    gauge("tether_webhook_diffs_total", "git diffs for pushes without a complete file list.", lambda: hooks.diffs)
    gauge(
        "tether_webhook_refused_total",
        "Deliveries answered 503 (queue full).",
        lambda: controller.webhooks.gate.refused,
    )
    gauge(
        "tether_webhook_queue_depth",
        "Pushes waiting for the webhook worker.",
        lambda: controller.webhooks.waiting,
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, str]:
        if controller.ready:
            return {"status": "ready"}
        response.status_code = 503
        return {"status": "not ready", "reason": "the controller cannot read its Applications from the API server"}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
