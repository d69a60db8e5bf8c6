"""The real API server's refusals arrive as errors a controller can act on: a stable reason, and retry or not."""

from __future__ import annotations

import pytest

from tether.cluster import Cluster, ClusterError, UnknownKind
from tether.errors import Reason

pytestmark = pytest.mark.cluster


def _config_map(namespace: str, name: str, value: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"k": value},
    }


async def test_refusals_carry_the_servers_reason_and_whether_a_retry_helps(kube: Cluster, namespace: str) -> None:
    with pytest.raises(ClusterError) as invalid:
        await kube.apply(_config_map(namespace, "Not_A_Name", "v"))
    assert (invalid.value.reason, invalid.value.retryable) == ("Invalid", False)

    await kube.apply(_config_map(namespace, "shared", "mine"), field_manager="someone-else")
    with pytest.raises(ClusterError) as conflict:
        await kube.apply(_config_map(namespace, "shared", "theirs"))  # not forced: the field is someone else's
    assert (conflict.value.reason, conflict.value.retryable) == (Reason.CONFLICT, True)

    with pytest.raises(UnknownKind) as unknown:
        await kube.get("widgets.example.com/v1", "Widget", "w", namespace)
    assert unknown.value.retryable and unknown.value.to_dict()["reason"] == "UnknownKind"
