"""Services and Ingresses: healthy once traffic can reach them from outside, when that is asked for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.health.fields import items, text
from tether.health.status import Health, HealthStatus


def _has_load_balancer(obj: Mapping[str, Any]) -> bool:
    return bool(items(obj, "status", "loadBalancer", "ingress"))


def service_health(obj: Mapping[str, Any]) -> Health:
    """A LoadBalancer Service waits for an address; every other Service is Healthy as soon as it exists."""
    if text(obj, "spec", "type") == "LoadBalancer" and not _has_load_balancer(obj):
        return Health(HealthStatus.PROGRESSING)
    return Health(HealthStatus.HEALTHY)


def ingress_health(obj: Mapping[str, Any]) -> Health:
    """An Ingress is Healthy once its controller published a load balancer address (Argo CD's rule)."""
    if _has_load_balancer(obj):
        return Health(HealthStatus.HEALTHY)
    return Health(HealthStatus.PROGRESSING)
