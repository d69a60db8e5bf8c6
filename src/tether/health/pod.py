"""Pod health, with Argo CD's care for pods that are meant to finish (hooks, one-off pods).

A pod that restarts forever (``restartPolicy: Always``, the API default) and whose
container waits with an error reason (CrashLoopBackOff, ImagePullBackOff, ErrImagePull…)
is Degraded at once. A pod with ``Never``/``OnFailure`` is not judged by that rule and,
while running, counts as Progressing: it is expected to finish, and marking it Degraded
early would fail a sync hook that is only waiting for its image.

An operator-managed pod that runs for good with ``Never``/``OnFailure`` (KubeVirt's
virt-launcher, Flink, ArangoDB) opts back in with ``ignore-restart-policy: "true"`` under
``argocd.argoproj.io/`` or ``tether.dev/``: while Running it is judged as an ``Always`` pod
(Ready → Healthy, a restarted container → Degraded). Only ``"true"`` counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.health.fields import FieldError, condition, condition_text, field, integer, items, text
from tether.health.status import Health, HealthStatus
from tether.resource import annotation

IGNORE_RESTART_POLICY = "ignore-restart-policy"


def _container_statuses(obj: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    statuses = items(obj, "status", key)
    for status in statuses:
        if not isinstance(status, Mapping):
            raise FieldError(f".status.{key} holds a {type(status).__name__}, not an object")
    return statuses


def _is_error_reason(reason: str) -> bool:
    return reason.startswith("Err") or reason.endswith("Error") or reason.endswith("BackOff")


def _waiting_errors(obj: Mapping[str, Any]) -> list[str]:
    messages = []
    for status in _container_statuses(obj, "containerStatuses"):
        waiting = field(status, "state", "waiting")
        if waiting is None:
            continue
        reason = text(waiting, "reason")
        if _is_error_reason(reason):
            messages.append(text(waiting, "message") or reason)
    return messages


def _failure_message(status: Mapping[str, Any]) -> str:
    terminated = field(status, "state", "terminated")
    if terminated is None:
        return ""
    if text(terminated, "message"):
        return text(terminated, "message")
    if text(terminated, "reason") == "OOMKilled":
        return "OOMKilled"
    exit_code = integer(terminated, "exitCode")
    if exit_code != 0:
        return f'container "{text(status, "name")}" failed with exit code {exit_code}'
    return ""


def _running_health(obj: Mapping[str, Any], message: str) -> Health:
    ready = condition(obj, "Ready")
    if ready is not None and condition_text(ready, "status") == "True":
        return Health(HealthStatus.HEALTHY, message)
    for status in _container_statuses(obj, "containerStatuses"):
        if field(status, "lastState", "terminated") is not None:
            return Health(HealthStatus.DEGRADED, message)
    return Health(HealthStatus.PROGRESSING, message)


def pod_health(obj: Mapping[str, Any]) -> Health:
    """Pending is Progressing, Succeeded Healthy, Failed Degraded; Running depends on readiness and restart policy."""
    restart_policy = text(obj, "spec", "restartPolicy") or "Always"
    if restart_policy == "Always":
        errors = _waiting_errors(obj)
        if errors:
            return Health(HealthStatus.DEGRADED, ", ".join(errors))
    phase = text(obj, "status", "phase")
    message = text(obj, "status", "message")
    if phase == "Pending":
        return Health(HealthStatus.PROGRESSING, message)
    if phase == "Succeeded":
        return Health(HealthStatus.HEALTHY, message)
    if phase == "Failed":
        if message:
            return Health(HealthStatus.DEGRADED, message)
        statuses = _container_statuses(obj, "initContainerStatuses") + _container_statuses(obj, "containerStatuses")
        failures = [found for found in map(_failure_message, statuses) if found]
        return Health(HealthStatus.DEGRADED, failures[0] if failures else "")
    if phase == "Running":
        if annotation(obj, IGNORE_RESTART_POLICY) == "true" or restart_policy == "Always":
            return _running_health(obj, message)
        if restart_policy in ("OnFailure", "Never"):
            return Health(HealthStatus.PROGRESSING, message)
    return Health(HealthStatus.UNKNOWN, message)
