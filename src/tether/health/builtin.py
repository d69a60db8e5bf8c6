"""Which built-in check a kind gets, keyed by API group and kind as in Argo CD."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tether.health.cluster import apiservice_health, namespace_health, pvc_health
from tether.health.crd import crd_health
from tether.health.fields import FieldError
from tether.health.hpa import hpa_health
from tether.health.job import job_health
from tether.health.network import ingress_health, service_health
from tether.health.pod import pod_health
from tether.health.status import Health, HealthStatus
from tether.health.workloads import daemonset_health, deployment_health, replicaset_health, statefulset_health

Check = Callable[[Mapping[str, Any]], Health | None]

BUILTIN_CHECKS: dict[tuple[str, str], Check] = {
    ("apps", "Deployment"): deployment_health,
    ("apps", "StatefulSet"): statefulset_health,
    ("apps", "DaemonSet"): daemonset_health,
    ("apps", "ReplicaSet"): replicaset_health,
    ("", "Pod"): pod_health,
    ("", "Service"): service_health,
    ("", "PersistentVolumeClaim"): pvc_health,
    ("", "Namespace"): namespace_health,
    ("batch", "Job"): job_health,
    ("networking.k8s.io", "Ingress"): ingress_health,
    ("extensions", "Ingress"): ingress_health,
    ("apiregistration.k8s.io", "APIService"): apiservice_health,
    ("autoscaling", "HorizontalPodAutoscaler"): hpa_health,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): crd_health,
}


def run_check(check: Check, obj: Mapping[str, Any], kind: str) -> Health | None:
    """Run ``check``; a field of the wrong type is Unknown with the reason, as a failed conversion is in Argo CD."""
    try:
        return check(obj)
    except FieldError as exc:
        return Health(HealthStatus.UNKNOWN, f"failed to read {kind}: {exc}")
