"""Conditions keep their transition time, are masked and capped, and refuse malformed fields."""

from __future__ import annotations

import pytest

from tether.controller import conditions as c
from tether.secrets import REDACTOR


def test_new_condition_is_appended_with_now() -> None:
    result = c.set_condition([], c.READY, "True", "Synced", "all good", "t1")
    assert result == [
        {"type": "Ready", "status": "True", "reason": "Synced", "message": "all good", "lastTransitionTime": "t1"}
    ]


def test_same_status_keeps_transition_time_but_takes_new_reason_and_message() -> None:
    first = c.set_condition([], c.READY, "False", "Progressing", "rolling out", "t1")
    second = c.set_condition(first, c.READY, "False", "Degraded", "pod crashed", "t2")
    assert second[0]["lastTransitionTime"] == "t1"
    assert second[0]["reason"] == "Degraded" and second[0]["message"] == "pod crashed"
    third = c.set_condition(second, c.READY, "True", "Healthy", "", "t3")
    assert third[0]["lastTransitionTime"] == "t3"
    assert first[0]["reason"] == "Progressing"  # the input is untouched


def test_other_conditions_keep_their_place() -> None:
    conds = c.set_condition([], c.READY, "True", "Synced", "", "t1")
    conds = c.set_condition(conds, c.SYNC_ERROR, "True", "SyncFailed", "boom", "t1")
    conds = c.set_condition(conds, c.READY, "False", "SyncFailed", "boom", "t2")
    assert [x["type"] for x in conds] == ["Ready", "SyncError"]
    assert c.get_condition(conds, c.SYNC_ERROR) is not None
    removed = c.remove_condition(conds, c.SYNC_ERROR)
    assert [x["type"] for x in removed] == ["Ready"]
    assert c.get_condition(removed, c.SYNC_ERROR) is None
    assert c.remove_condition(removed, "Absent") == removed


def test_messages_are_redacted_and_capped() -> None:
    canary = "canary-cond-3f9a1c77e2"
    REDACTOR.add(canary)
    result = c.set_condition([], c.COMPARISON_ERROR, "True", "RenderFailed", f"value {canary} leaked " * 200, "t1")
    message = result[0]["message"]
    assert canary not in message and "********" in message
    assert len(message) <= c.MAX_MESSAGE and message.endswith("(truncated)")


def test_argo_cd_condition_type_names() -> None:
    assert {
        "ComparisonError",
        "InvalidSpecError",
        "SyncError",
        "SharedResourceWarning",
        "OrphanedResourceWarning",
        "DeletionError",
    } == c.ARGO_TYPES
    assert (c.READY, c.RECONCILING, c.STALLED) == ("Ready", "Reconciling", "Stalled")


@pytest.mark.parametrize(
    ("type_", "status", "reason", "match"),
    [
        ("Ready", "yes", "Synced", "status"),
        ("Ready", "True", "not camel case", "reason"),
        ("Ready", "True", "", "reason"),
        ("", "True", "Synced", "type"),
    ],
)
def test_malformed_conditions_are_refused(type_: str, status: str, reason: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        c.set_condition([], type_, status, reason, "", "t1")
