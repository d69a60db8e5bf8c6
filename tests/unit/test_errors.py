"""Errors a controller can act on: a stable reason, whether a retry helps, the app named once."""

from __future__ import annotations

import asyncio

import pytest

from tether.errors import ProcessError, Reason, TetherError
from tether.proc import run


def test_the_app_prefix_is_added_once_however_many_layers_add_it() -> None:
    error = TetherError("manifests/a.yaml: metadata.name: must be a string")
    assert error.for_app("web") is error
    error.for_app("web").for_app("other")
    assert str(error) == "app 'web': manifests/a.yaml: metadata.name: must be a string"
    assert error.app == "web"


def test_reason_and_retryable_come_from_the_class_unless_the_raise_site_says() -> None:
    assert (TetherError("x").reason, TetherError("x").retryable) == (Reason.ERROR, False)
    assert ProcessError("helm failed").reason == Reason.TOOL_FAILED
    custom = ProcessError("slow", reason=Reason.TIMEOUT, retryable=True)
    assert custom.to_dict() == {"reason": "Timeout", "retryable": True, "message": "slow"}


def test_a_tool_that_times_out_is_a_retryable_timeout() -> None:
    with pytest.raises(ProcessError) as caught:
        asyncio.run(run(["sleep", "5"], timeout=0.2))
    assert caught.value.reason == Reason.TIMEOUT and caught.value.retryable


def test_cluster_errors_carry_the_servers_reason_or_one_from_the_status() -> None:
    from tether.cluster.errors import ClusterError, ClusterUnreachable, UnknownKind

    forbidden = ClusterError.from_status("apply ConfigMap a/b", 403, {"reason": "Forbidden", "message": "no"})
    assert (forbidden.reason, forbidden.retryable) == ("Forbidden", False)
    assert (ClusterError("x", 409).reason, ClusterError("x", 409).retryable) == (Reason.CONFLICT, True)
    assert (ClusterError("x", 503).reason, ClusterError("x", 503).retryable) == (Reason.CLUSTER_ERROR, True)
    assert (ClusterError("x", 422).reason, ClusterError("x", 422).retryable) == (Reason.INVALID, False)
    assert ClusterUnreachable("gone").to_dict()["reason"] == Reason.CLUSTER_UNREACHABLE
    assert ClusterUnreachable("gone").retryable
    assert UnknownKind("no such kind").retryable  # its CRD may arrive


def test_a_wrapping_error_keeps_the_cause_s_app_reason_and_retryability() -> None:
    from tether.diff.errors import DiffError

    cause = ProcessError("jq: took too long", reason=Reason.TIMEOUT, retryable=True).for_app("web")
    wrapped = DiffError.wrapping(cause, "ConfigMap shop/cfg").for_app("other")
    assert str(wrapped) == "app 'web': ConfigMap shop/cfg: jq: took too long"
    assert (wrapped.reason, wrapped.retryable) == (Reason.TIMEOUT, True)
    assert DiffError("bad rule").reason == Reason.INVALID_SPEC
