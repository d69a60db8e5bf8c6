"""Argo CD's automated sync rules, rule by rule and in their order."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tether.controller.autosync import AutoSyncInputs, LastOperation, ResourceState, decide
from tether.resource import ResourceKey

REV = "a" * 40
NEW_REV = "b" * 40
DIGEST = "d1"
NOW = 1_000_000.0

DEPLOY = ResourceKey("apps", "Deployment", "web", "web")
SERVICE = ResourceKey("", "Service", "web", "web")
EXTRA = ResourceKey("", "ConfigMap", "web", "leftover")
HOOK = ResourceKey("batch", "Job", "web", "migrate")


def state(key: ResourceKey, status: str = "Synced", *, prune: bool = False, hook: bool = False) -> ResourceState:
    return ResourceState(key=key, status=status, requires_pruning=prune, hook=hook)


def inputs(**changes: object) -> AutoSyncInputs:
    base = AutoSyncInputs(
        automated=True,
        enabled=True,
        prune=False,
        self_heal=False,
        allow_empty=False,
        sync_status="OutOfSync",
        operation_running=False,
        deleting=False,
        revisions=(REV,),
        compared_digest=DIGEST,
        resources=(state(DEPLOY, "OutOfSync"), state(SERVICE)),
        last=None,
        window_allows=True,
        window_reason="",
        now=NOW,
    )
    return replace(base, **changes)


def last(phase: str = "Succeeded", **changes: object) -> LastOperation:
    base = LastOperation(
        revisions=(REV,),
        compared_digest=DIGEST,
        phase=phase,
        message="successfully synced" if phase == "Succeeded" else "one or more objects failed to apply",
        finished_at=NOW - 1,
        automated=True,
        self_heal_attempts=0,
    )
    return replace(base, **changes)


def test_out_of_sync_app_with_a_new_revision_syncs_in_full() -> None:
    decision = decide(inputs(last=last(revisions=("0" * 40,))))
    assert decision.sync and decision.partial is None and decision.self_heal_attempt == 0
    assert decision.error is None and decision.requeue_after is None
    assert REV in decision.reason


def test_first_sync_ever_syncs() -> None:
    assert decide(inputs()).sync


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"automated": False}, "automated sync is off"),
        ({"enabled": False}, "automated sync is off"),
        ({"operation_running": True}, "another operation is in progress"),
        ({"last": last("Running", revisions=("0" * 40,))}, "another operation is in progress"),
        ({"deleting": True}, "deletion in progress"),
        ({"sync_status": "Synced"}, "application status is Synced"),
        ({"sync_status": "Unknown"}, "application status is Unknown"),
    ],
)
def test_guards_that_stop_a_sync_silently(changes: dict[str, object], reason: str) -> None:
    decision = decide(inputs(**changes))
    assert not decision.sync
    assert decision.reason == reason
    assert decision.error is None and decision.requeue_after is None


def test_operation_is_checked_before_sync_status_as_in_argo_cd() -> None:
    assert decide(inputs(operation_running=True, sync_status="Synced")).reason == "another operation is in progress"


def test_prune_only_with_prune_off_does_nothing() -> None:
    resources = (state(DEPLOY), state(EXTRA, "OutOfSync", prune=True))
    decision = decide(inputs(resources=resources))
    assert not decision.sync
    assert "prune extra resources only" in decision.reason
    assert decide(inputs(resources=resources, prune=True)).sync


def test_an_out_of_sync_hook_does_not_make_prune_only_into_work() -> None:
    resources = (state(DEPLOY), state(EXTRA, "OutOfSync", prune=True), state(HOOK, "OutOfSync", hook=True))
    assert not decide(inputs(resources=resources)).sync


def test_failed_attempt_at_same_revision_and_spec_is_never_retried() -> None:
    decision = decide(inputs(last=last("Failed"), self_heal=True))
    assert not decision.sync
    assert decision.error == f"Failed sync attempt to {REV}: one or more objects failed to apply"
    for phase in ("Error", "Terminated"):
        assert decide(inputs(last=last(phase))).error is not None


def test_failed_attempt_is_retried_after_a_new_commit_or_a_spec_change() -> None:
    failed = last("Failed")
    assert decide(inputs(last=failed, revisions=(NEW_REV,))).sync
    assert decide(inputs(last=failed, compared_digest="d2")).sync


def test_multi_source_revisions_compare_as_a_whole() -> None:
    failed = last("Failed", revisions=(REV, NEW_REV))
    decision = decide(inputs(last=failed, revisions=(REV, NEW_REV)))
    assert decision.error == f"Failed sync attempt to {REV}, {NEW_REV}: one or more objects failed to apply"
    assert decide(inputs(last=failed, revisions=(REV, "c" * 40))).sync


def test_successful_sync_at_same_revision_without_self_heal_only_shows_out_of_sync() -> None:
    decision = decide(inputs(last=last()))
    assert not decision.sync and decision.error is None and decision.requeue_after is None
    assert "self-heal is off" in decision.reason


def test_self_heal_is_a_partial_sync_of_the_drifted_resources_only() -> None:
    resources = (
        state(DEPLOY, "OutOfSync"),
        state(SERVICE),
        state(EXTRA, "OutOfSync", prune=True),
        state(HOOK, "OutOfSync", hook=True),
        state(ResourceKey("", "Secret", "web", "creds"), "Unknown"),
    )
    decision = decide(inputs(last=last(), self_heal=True, prune=True, resources=resources))
    assert decision.sync
    assert decision.partial == (DEPLOY, EXTRA, ResourceKey("", "Secret", "web", "creds"))
    assert decision.self_heal_attempt == 1


@pytest.mark.parametrize(("attempts", "delay"), [(1, 2), (2, 6), (3, 18), (4, 54), (5, 162), (6, 300), (9, 300)])
def test_self_heal_backs_off_from_finished_at(attempts: int, delay: float) -> None:
    finished = NOW - 1
    waiting = decide(inputs(last=last(self_heal_attempts=attempts, finished_at=finished), self_heal=True))
    assert not waiting.sync
    assert waiting.requeue_after == pytest.approx(delay - 1)
    assert waiting.error is None
    due = decide(
        inputs(last=last(self_heal_attempts=attempts, finished_at=finished), self_heal=True, now=finished + delay)
    )
    assert due.sync and due.self_heal_attempt == attempts + 1 and due.partial == (DEPLOY,)


def test_self_heal_backoff_without_finished_at_waits_the_whole_delay() -> None:
    decision = decide(inputs(last=last(self_heal_attempts=2, finished_at=None), self_heal=True))
    assert decision.requeue_after == 6


def test_self_heal_backoff_resets_with_a_new_revision() -> None:
    decision = decide(inputs(last=last(self_heal_attempts=6), self_heal=True, revisions=(NEW_REV,)))
    assert decision.sync and decision.partial is None and decision.self_heal_attempt == 0


def test_self_heal_with_nothing_drifted_does_not_resync_everything() -> None:
    resources = (state(DEPLOY), state(HOOK, "OutOfSync", hook=True))
    decision = decide(inputs(last=last(), self_heal=True, prune=True, resources=resources))
    assert not decision.sync and "no resource drifted" in decision.reason


def test_a_failed_self_heal_is_not_retried_at_the_same_revision() -> None:
    decision = decide(inputs(last=last("Failed", self_heal_attempts=1), self_heal=True))
    assert not decision.sync and decision.error is not None and decision.error.startswith("Failed sync attempt")


def test_prune_of_everything_is_refused_without_allow_empty() -> None:
    resources = (state(DEPLOY, "OutOfSync", prune=True), state(SERVICE, "OutOfSync", prune=True))
    decision = decide(inputs(prune=True, resources=resources))
    assert not decision.sync
    assert decision.error == f"Skipping sync attempt to {REV}: auto-sync will wipe out all resources"
    assert decide(inputs(prune=True, allow_empty=True, resources=resources)).sync


def test_hooks_alone_do_not_keep_an_app_from_being_wiped_out() -> None:
    resources = (state(DEPLOY, "OutOfSync", prune=True), state(HOOK, "Synced", hook=True))
    assert decide(inputs(prune=True, resources=resources)).error is not None


def test_wipe_out_guard_comes_after_the_failed_attempt_guard() -> None:
    resources = (state(DEPLOY, "OutOfSync", prune=True),)
    decision = decide(inputs(prune=True, resources=resources, last=last("Failed")))
    assert decision.error is not None and decision.error.startswith("Failed sync attempt")


def test_a_closed_sync_window_stops_the_sync_last() -> None:
    decision = decide(inputs(window_allows=False, window_reason="deny window 0 22 * * * (1h) matches"))
    assert not decision.sync and "deny window" in decision.reason and decision.error is None
    # the rules before it still speak while the window is closed
    failed = decide(inputs(window_allows=False, last=last("Failed")))
    assert failed.error is not None
    waiting = decide(inputs(window_allows=False, last=last(self_heal_attempts=3), self_heal=True))
    assert waiting.requeue_after is not None
    heal = decide(inputs(window_allows=False, last=last(), self_heal=True))
    assert not heal.sync and "sync window" in heal.reason
