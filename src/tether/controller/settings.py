"""Everything `tether serve` can be told, from flags or ``TETHER_*`` environment variables, in one value."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tether.paths import cache_root

DEFAULT_NAMESPACE = "tether-system"
DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_POLL_INTERVAL = 120.0
DEFAULT_POLL_JITTER = 60.0
DEFAULT_STATUS_SETTLE = 2.0


@dataclass(frozen=True)
class Settings:
    """How one controller process runs (documented in docs/controller.md, "Settings").

    ``poll_jitter`` spreads the polls of many apps over time (Argo CD's ``timeout.reconciliation.jitter``);
    ``max_compares`` / ``max_syncs`` / ``max_renders`` bound comparisons, sync operations and the
    helm/kustomize processes run at once. ``kubeconfig`` None with ``in_cluster`` True uses the
    pod's service account; otherwise the current kubeconfig context.
    """

    namespace: str = DEFAULT_NAMESPACE
    listen: str = DEFAULT_LISTEN
    poll_interval: float = DEFAULT_POLL_INTERVAL
    poll_jitter: float = DEFAULT_POLL_JITTER
    database_url: str | None = None
    max_compares: int = 16
    max_syncs: int = 8
    max_renders: int = 4
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    state_dir: Path = field(default_factory=lambda: cache_root() / "controller")
    password_store: Path | None = None
    gnupg_home: Path | None = None
    pass_poll_interval: float = 5.0
    shutdown_grace: float = 25.0
    sync_timeout: float = 300.0
    status_settle: float = DEFAULT_STATUS_SETTLE  # seconds a status in motion waits to be written
    webhook_max_body: int = 1024 * 1024  # bytes: a bigger delivery is refused with 413, unread
    webhook_read_timeout: float = 10.0  # seconds for a delivery's headers, and again for its body
    webhook_queue: int = 1000  # pushes waiting to be handled; beyond that deliveries get 503 and Retry-After
    webhook_allow_unauthenticated: bool = False  # accept providers with no secret configured (docs/webhooks.md)

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return (host or "127.0.0.1").strip("[]"), int(port)
