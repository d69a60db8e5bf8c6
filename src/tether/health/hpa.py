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

# gitops-engine's health_hpa.go (as carried into Argo CD's pkg/health): (type, reason) pairs.
DEGRADED_REASONS = frozenset(
    {
        ("AbleToScale", "FailedGetScale"),
        ("AbleToScale", "FailedUpdateScale"),
        ("ScalingActive", "FailedGetResourceMetric"),
        ("ScalingActive", "InvalidSelector"),
    }
)
HEALTHY_REASONS = frozenset(
    {
        ("AbleToScale", "SucceededRescale"),
        ("ScalingLimited", "DesiredWithinRange"),
        ("ScalingLimited", "TooFewReplicas"),
        ("ScalingLimited", "TooManyReplicas"),
        ("ScalingActive", "ScalingDisabled"),
    }
)


def _v1_conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = field(obj, "metadata", "annotations", V1_CONDITIONS_ANNOTATION)
    if raw is None:
        return []
    try:
        parsed = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise FieldError(f"annotation {V1_CONDITIONS_ANNOTATION} is not JSON: {exc}") from None
    if parsed is None:
        return []
    if not isinstance(parsed, list) or not all(isinstance(item, Mapping) for item in parsed):
        raise FieldError(f"annotation {V1_CONDITIONS_ANNOTATION} is not a list of conditions")
    return parsed


def hpa_health(obj: Mapping[str, Any]) -> Health:
    """The first condition, in order, that is a known failure (Degraded) or a known good state (Healthy) decides.

    Argo CD's rule, order included: a condition with any other reason (``ReadyForNewScale``,
    ``ValidMetricFound``…) decides nothing, and with none deciding the HPA is Progressing,
    "Waiting to Autoscale" — also when it has no conditions yet.
    """
    found = _v1_conditions(obj) if obj.get("apiVersion") == "autoscaling/v1" else conditions(obj)
    for item in found:
        pair = (condition_text(item, "type"), condition_text(item, "reason"))
        if pair in DEGRADED_REASONS:
            return Health(HealthStatus.DEGRADED, condition_text(item, "message"))
        if pair in HEALTHY_REASONS:
            return Health(HealthStatus.HEALTHY, condition_text(item, "message"))
    return WAITING
