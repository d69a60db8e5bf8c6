"""Job health: running is Progressing until a Complete or Failed condition settles it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.health.fields import condition_text, conditions, flag
from tether.health.status import Health, HealthStatus


def job_health(obj: Mapping[str, Any]) -> Health:
    """Failed is Degraded, Complete Healthy, suspended (spec or condition) Suspended, else Progressing."""
    settled: dict[str, Mapping[str, Any]] = {}
    for found in conditions(obj):
        kind = condition_text(found, "type")
        if kind in ("Failed", "Complete", "Suspended") and condition_text(found, "status") == "True":
            settled.setdefault(kind, found)
    if "Failed" in settled:
        return Health(HealthStatus.DEGRADED, condition_text(settled["Failed"], "message"))
    if "Complete" in settled:
        return Health(HealthStatus.HEALTHY, condition_text(settled["Complete"], "message"))
    if "Suspended" in settled:
        return Health(HealthStatus.SUSPENDED, condition_text(settled["Suspended"], "message"))
    if flag(obj, "spec", "suspend"):
        return Health(HealthStatus.SUSPENDED, "Job is suspended")
    return Health(HealthStatus.PROGRESSING)
