"""Kinds whose health is a phase or one condition: PersistentVolumeClaim, Namespace, APIService."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.health.fields import condition, condition_text, text
from tether.health.status import Health, HealthStatus

_CLAIM_PHASES = {
    "Bound": HealthStatus.HEALTHY,
    "Pending": HealthStatus.PROGRESSING,
    "Lost": HealthStatus.DEGRADED,
}


def pvc_health(obj: Mapping[str, Any]) -> Health:
    """Bound is Healthy, Pending Progressing, Lost Degraded; any other phase Unknown (as Argo CD)."""
    return Health(_CLAIM_PHASES.get(text(obj, "status", "phase"), HealthStatus.UNKNOWN))


def namespace_health(obj: Mapping[str, Any]) -> Health | None:
    """Active is Healthy, Terminating Progressing; a Namespace without a phase has no health yet."""
    phase = text(obj, "status", "phase")
    if phase == "Active":
        return Health(HealthStatus.HEALTHY)
    if phase == "Terminating":
        return Health(HealthStatus.PROGRESSING, "Namespace is terminating")
    if not phase:
        return None
    return Health(HealthStatus.UNKNOWN, f"unknown Namespace phase {phase!r}")


def apiservice_health(obj: Mapping[str, Any]) -> Health:
    """The Available condition decides: True is Healthy, anything else Progressing."""
    available = condition(obj, "Available")
    if available is None:
        return Health(HealthStatus.PROGRESSING, "Waiting to be processed")
    message = f"{condition_text(available, 'reason')}: {condition_text(available, 'message')}"
    if condition_text(available, "status") == "True":
        return Health(HealthStatus.HEALTHY, message)
    return Health(HealthStatus.PROGRESSING, message)
