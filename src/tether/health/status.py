"""Health values, one assessed health, and how an app's health follows from its resources'."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum


class HealthStatus(str, Enum):
    """How a resource is doing; the same six values as Argo CD, so its Lua checks fit unchanged."""

    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    SUSPENDED = "Suspended"
    MISSING = "Missing"
    UNKNOWN = "Unknown"

    def __str__(self) -> str:
        return self.value


# Most healthy first; an app takes the last of these that any of its resources has.
SEVERITY_ORDER: tuple[HealthStatus, ...] = (
    HealthStatus.HEALTHY,
    HealthStatus.SUSPENDED,
    HealthStatus.PROGRESSING,
    HealthStatus.MISSING,
    HealthStatus.DEGRADED,
    HealthStatus.UNKNOWN,
)
_SEVERITY = {status: rank for rank, status in enumerate(SEVERITY_ORDER)}


@dataclass(frozen=True)
class Health:
    """The outcome of one assessment: a status and the reason a person would want to read."""

    status: HealthStatus
    message: str = ""


def is_worse(current: HealthStatus, new: HealthStatus) -> bool:
    """Whether ``new`` ranks below ``current`` in SEVERITY_ORDER (Argo CD's ``IsWorse``)."""
    return _SEVERITY[new] > _SEVERITY[current]


def aggregate(healths: Iterable[Health | None]) -> HealthStatus:
    """An app's health: the worst of its resources', Healthy when none has a health.

    ``None`` stands for a resource without health (a ConfigMap, an ignored resource) and
    does not count, as in Argo CD. A resource absent from the cluster counts only when
    the caller passes ``Health(HealthStatus.MISSING)`` for it.
    """
    worst = HealthStatus.HEALTHY
    for health in healths:
        if health is not None and is_worse(worst, health.status):
            worst = health.status
    return worst
