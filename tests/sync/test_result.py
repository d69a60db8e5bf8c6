"""The sync result as plain data: what the controller stores and `tether sync -o json` prints."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tether.sync import OperationPhase, Phase, ResourceAction, ResourceResult, ResultStatus, SyncResult


def test_result_serialises_to_plain_json() -> None:
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    hook = ResourceResult(
        "batch",
        "Job",
        "shop",
        "migrate",
        ResourceAction.HOOK,
        ResultStatus.SYNCED,
        "hook completed",
        Phase.PRE_SYNC,
        -1,
        OperationPhase.SUCCEEDED,
        "Healthy",
    )
    pruned = ResourceResult(
        "", "ConfigMap", "shop", "old", ResourceAction.PRUNED, ResultStatus.PRUNED, "pruned", Phase.SYNC, 0
    )
    result = SyncResult(
        "shop", OperationPhase.SUCCEEDED, "done", started, started, revision="abc", resources=[hook, pruned]
    )
    data = json.loads(json.dumps(result.to_dict()))
    assert data["phase"] == "Succeeded" and data["startedAt"] == "2026-01-02T03:04:05+00:00"
    assert data["resources"][0] == {
        "group": "batch",
        "kind": "Job",
        "namespace": "shop",
        "name": "migrate",
        "action": "hook",
        "status": "Synced",
        "message": "hook completed",
        "phase": "PreSync",
        "wave": -1,
        "hookPhase": "Succeeded",
        "health": "Healthy",
        "blockedBy": [],
    }
    assert data["reason"] == ""
    assert data["resources"][1]["hookPhase"] is None and data["resources"][1]["action"] == "pruned"
    assert result.find("ConfigMap", "old") is pruned and result.find("Job", "migrate", Phase.SYNC) is None
