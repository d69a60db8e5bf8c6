"""Health of any other kind from the Kubernetes condition conventions (Ready, Reconciling, Stalled).

Most operators (Flux, cert-manager, Crossplane, cluster-api…) publish these conditions,
so reading them gives a useful health to custom resources nobody wrote a check for. An
object without a status, or whose conditions say nothing we understand, has no health.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.health.fields import condition, condition_text, field, integer
from tether.health.status import Health, HealthStatus

# A Ready=False condition with one of these reasons says "not yet", not "broken".
PROGRESSING_REASONS = frozenset(
    {
        "Progressing",
        "Reconciling",
        "InProgress",
        "Pending",
        "Provisioning",
        "Creating",
        "Updating",
        "Initializing",
        "DependencyNotReady",
    }
)


def _is_true(found: Mapping[str, Any]) -> bool:
    return condition_text(found, "status") == "True"


def _describe(found: Mapping[str, Any]) -> str:
    return condition_text(found, "message") or condition_text(found, "reason")


def conditions_health(obj: Mapping[str, Any]) -> Health | None:
    """Stale observedGeneration, then Stalled, Reconciling and Ready, in the order kstatus reads them."""
    if field(obj, "status") is None:
        return None
    observed = field(obj, "status", "observedGeneration")
    generation = integer(obj, "metadata", "generation")
    if observed is not None and integer(obj, "status", "observedGeneration") < generation:
        return Health(
            HealthStatus.PROGRESSING,
            f"Waiting for the controller to observe generation {generation} (observed {observed})",
        )
    stalled = condition(obj, "Stalled")
    if stalled is not None and _is_true(stalled):
        return Health(HealthStatus.DEGRADED, _describe(stalled))
    reconciling = condition(obj, "Reconciling")
    if reconciling is not None and _is_true(reconciling):
        return Health(HealthStatus.PROGRESSING, _describe(reconciling))
    ready = condition(obj, "Ready")
    if ready is None:
        return None
    status = condition_text(ready, "status")
    if _is_true(ready):
        return Health(HealthStatus.HEALTHY, _describe(ready))
    if status == "False" and condition_text(ready, "reason") not in PROGRESSING_REASONS:
        return Health(HealthStatus.DEGRADED, _describe(ready))
    return Health(HealthStatus.PROGRESSING, _describe(ready))
