"""CustomResourceDefinition health: established, names accepted, structural schema (Argo CD's rules)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.health.fields import condition_text, conditions
from tether.health.status import Health, HealthStatus


def crd_health(obj: Mapping[str, Any]) -> Health:
    """Terminating is Progressing; rejected names, not established or a non-structural schema are Degraded."""
    found = conditions(obj)
    if not found:
        return Health(HealthStatus.PROGRESSING, "Status conditions not found")
    by_type = {condition_text(item, "type"): item for item in reversed(found)}

    def holds(kind: str, status: str) -> Mapping[str, Any] | None:
        item = by_type.get(kind)
        return item if item is not None and condition_text(item, "status") == status else None

    if terminating := holds("Terminating", "True"):
        return Health(HealthStatus.PROGRESSING, f"CRD is being terminated: {condition_text(terminating, 'message')}")
    if rejected := holds("NamesAccepted", "False"):
        return Health(HealthStatus.DEGRADED, f"CRD names have not been accepted: {condition_text(rejected, 'message')}")
    if holds("Established", "True") is None:
        established = by_type.get("Established")
        reason = condition_text(established, "message") if established is not None else ""
        return Health(HealthStatus.DEGRADED, f"CRD is not established: {reason}")
    if violations := holds("NonStructuralSchema", "True"):
        return Health(HealthStatus.DEGRADED, f"Schema violations found: {condition_text(violations, 'message')}")
    return Health(HealthStatus.HEALTHY, "CRD is healthy")
