"""HorizontalPodAutoscaler health from its conditions, as Argo CD reads them.

``autoscaling/v1`` has no conditions field; the controller keeps them as JSON in the
``autoscaling.alpha.kubernetes.io/conditions`` annotation, so that is where v1 looks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tether.health.fields import FieldError, condition_text, conditions, field
from tether.health.status import Health, HealthStatus

V1_CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
WAITING = Health(HealthStatus.PROGRESSING, "Waiting to Autoscale")

_DEGRADED_REASONS = {
    ("AbleToScale", "FailedGetScale"),
    ("AbleToScale", "FailedUpdateScale"),
    ("ScalingActive", "FailedGetResourceMetric"),
    ("ScalingActive", "InvalidSelector"),
}
_HEALTHY_WHEN_TRUE = {"AbleToScale", "ScalingLimited"}


def _v1_conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    raw = field(obj, "metadata", "annotations", V1_CONDITIONS_ANNOTATION)
    if raw is None:
        return None
    try:
        parsed = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise FieldError(f"annotation {V1_CONDITIONS_ANNOTATION} is not JSON: {exc}") from None
    if not isinstance(parsed, list) or not all(isinstance(item, Mapping) for item in parsed):
        raise FieldError(f"annotation {V1_CONDITIONS_ANNOTATION} is not a list of conditions")
    return parsed


def hpa_health(obj: Mapping[str, Any]) -> Health:
    """A failure to get the scale or metrics is Degraded; Healthy only when every condition is a healthy one."""
    if obj.get("apiVersion") == "autoscaling/v1":
        found = _v1_conditions(obj)
        if not found:
            return WAITING
    else:
        found = conditions(obj)
    healthy_messages = []
    for item in found:
        kind, reason = condition_text(item, "type"), condition_text(item, "reason")
        if (kind, reason) in _DEGRADED_REASONS:
            return Health(HealthStatus.DEGRADED, condition_text(item, "message"))
        if kind in _HEALTHY_WHEN_TRUE and condition_text(item, "status") == "True":
            healthy_messages.append(condition_text(item, "message"))
    if len(healthy_messages) == len(found):
        return Health(HealthStatus.HEALTHY, ",".join(healthy_messages))
    return WAITING
