"""Rollout health of Deployments, StatefulSets, DaemonSets and ReplicaSets.

The rules and messages are Argo CD's (gitops-engine ``pkg/health``), which borrow them
from ``kubectl rollout status``: a controller that has not yet seen the latest spec, or
replicas still being replaced, means Progressing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.health.fields import condition, condition_text, field, flag, integer, optional_integer, text
from tether.health.status import Health, HealthStatus

PROGRESSING = HealthStatus.PROGRESSING
_STALE_GENERATION = "generation less then desired generation"  # Argo CD's wording, typo included, so messages match


def _name(obj: Mapping[str, Any]) -> str:
    return text(obj, "metadata", "name")


def _generation_observed(obj: Mapping[str, Any]) -> bool:
    return integer(obj, "metadata", "generation") <= integer(obj, "status", "observedGeneration")


def deployment_health(obj: Mapping[str, Any]) -> Health:
    """Paused is Suspended; a progress deadline exceeded is Degraded; a rollout under way is Progressing."""
    if flag(obj, "spec", "paused"):
        return Health(HealthStatus.SUSPENDED, "Deployment is paused")
    if not _generation_observed(obj):
        return Health(PROGRESSING, f"Waiting for rollout to finish: observed deployment {_STALE_GENERATION}")
    progressing = condition(obj, "Progressing")
    replicas = optional_integer(obj, "spec", "replicas")
    updated = integer(obj, "status", "updatedReplicas")
    current = integer(obj, "status", "replicas")
    available = integer(obj, "status", "availableReplicas")
    if progressing is not None and condition_text(progressing, "reason") == "ProgressDeadlineExceeded":
        return Health(HealthStatus.DEGRADED, f'Deployment "{_name(obj)}" exceeded its progress deadline')
    if replicas is not None and updated < replicas:
        return Health(
            PROGRESSING, f"Waiting for rollout to finish: {updated} out of {replicas} new replicas have been updated..."
        )
    if current > updated:
        return Health(
            PROGRESSING, f"Waiting for rollout to finish: {current - updated} old replicas are pending termination..."
        )
    if available < updated:
        return Health(
            PROGRESSING, f"Waiting for rollout to finish: {available} of {updated} updated replicas are available..."
        )
    return Health(HealthStatus.HEALTHY)


def statefulset_health(obj: Mapping[str, Any]) -> Health:
    """Ready pods first, then the update strategy: a partition, OnDelete, or a revision to reach."""
    observed = integer(obj, "status", "observedGeneration")
    if observed == 0 or integer(obj, "metadata", "generation") > observed:
        return Health(PROGRESSING, "Waiting for statefulset spec update to be observed...")
    replicas = optional_integer(obj, "spec", "replicas")
    ready = integer(obj, "status", "readyReplicas")
    updated = integer(obj, "status", "updatedReplicas")
    if replicas is not None and ready < replicas:
        return Health(PROGRESSING, f"Waiting for {replicas - ready} pods to be ready...")
    strategy = text(obj, "spec", "updateStrategy", "type")
    if strategy == "RollingUpdate" and field(obj, "spec", "updateStrategy", "rollingUpdate") is not None:
        partition = optional_integer(obj, "spec", "updateStrategy", "rollingUpdate", "partition")
        if replicas is not None and partition is not None and updated < replicas - partition:
            wanted = replicas - partition
            message = (
                f"Waiting for partitioned roll out to finish: {updated} out of {wanted} new pods have been updated..."
            )
            return Health(PROGRESSING, message)
        return Health(HealthStatus.HEALTHY, f"partitioned roll out complete: {updated} new pods have been updated...")
    if strategy == "OnDelete":
        return Health(HealthStatus.HEALTHY, f"statefulset has {ready} ready pods ({updated} updated)")
    update_revision = text(obj, "status", "updateRevision")
    current_revision = text(obj, "status", "currentRevision")
    if update_revision != current_revision:
        return Health(
            PROGRESSING,
            f"waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}...",
        )
    current = integer(obj, "status", "currentReplicas")
    return Health(
        HealthStatus.HEALTHY, f"statefulset rolling update complete {current} pods at revision {current_revision}..."
    )


def daemonset_health(obj: Mapping[str, Any]) -> Health:
    """Every scheduled node runs an updated, available pod; OnDelete never waits for replacements."""
    if not _generation_observed(obj):
        return Health(PROGRESSING, f"Waiting for rollout to finish: observed daemon set {_STALE_GENERATION}")
    desired = integer(obj, "status", "desiredNumberScheduled")
    updated = integer(obj, "status", "updatedNumberScheduled")
    available = integer(obj, "status", "numberAvailable")
    if text(obj, "spec", "updateStrategy", "type") == "OnDelete":
        return Health(HealthStatus.HEALTHY, f"daemon set {updated} out of {desired} new pods have been updated")
    if updated < desired:
        return Health(
            PROGRESSING,
            f'Waiting for daemon set "{_name(obj)}" rollout to finish: {updated} out of {desired} new pods have been updated...',
        )
    if available < desired:
        return Health(
            PROGRESSING,
            f'Waiting for daemon set "{_name(obj)}" rollout to finish: {available} of {desired} updated pods are available...',
        )
    return Health(HealthStatus.HEALTHY)


def replicaset_health(obj: Mapping[str, Any]) -> Health:
    """A ReplicaFailure condition is Degraded; fewer available replicas than wanted is Progressing."""
    if not _generation_observed(obj):
        return Health(PROGRESSING, f"Waiting for rollout to finish: observed replica set {_STALE_GENERATION}")
    failure = condition(obj, "ReplicaFailure")
    if failure is not None and condition_text(failure, "status") == "True":
        return Health(HealthStatus.DEGRADED, condition_text(failure, "message"))
    replicas = optional_integer(obj, "spec", "replicas")
    available = integer(obj, "status", "availableReplicas")
    if replicas is not None and available < replicas:
        return Health(
            PROGRESSING, f"Waiting for rollout to finish: {available} out of {replicas} new replicas are available..."
        )
    return Health(HealthStatus.HEALTHY)
