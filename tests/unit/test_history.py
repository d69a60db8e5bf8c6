"""status.history: Argo CD's entry shape, ids and limit."""

from __future__ import annotations

import pytest

from tether.controller.history import append, find, next_id

SRC = {"repoURL": "https://git.example/apps.git", "path": "web", "targetRevision": "main"}
SRC2 = {"repoURL": "https://git.example/values.git", "ref": "values", "targetRevision": "main"}
BY = {"username": "alice", "automated": False}


def add(history: list[dict[str, object]], rev: str, *, limit: int = 10) -> list[dict[str, object]]:
    return append(
        history,
        revisions=rev,
        sources=[SRC],
        deployed_at="2025-01-01T00:00:10Z",
        started_at="2025-01-01T00:00:00Z",
        initiated_by=BY,
        limit=limit,
    )


def test_first_entry_has_id_0_and_argo_cds_fields() -> None:
    history = add([], "a" * 40)
    assert history == [
        {
            "id": 0,
            "revision": "a" * 40,
            "source": SRC,
            "deployedAt": "2025-01-01T00:00:10Z",
            "deployStartedAt": "2025-01-01T00:00:00Z",
            "initiatedBy": {"username": "alice", "automated": False},
        }
    ]


def test_ids_grow_and_the_oldest_go_beyond_the_limit() -> None:
    history: list[dict[str, object]] = []
    for n in range(13):
        history = add(history, f"{n:040x}")
    assert [entry["id"] for entry in history] == list(range(3, 13))
    assert history[-1]["revision"] == f"{12:040x}"
    assert next_id(history) == 13


def test_limit_shrinks_history_and_ids_keep_counting() -> None:
    history: list[dict[str, object]] = []
    for n in range(5):
        history = add(history, f"{n:040x}")
    history = add(history, "f" * 40, limit=2)
    assert [entry["id"] for entry in history] == [4, 5]


def test_limit_zero_or_less_keeps_nothing_as_argo_cd() -> None:
    assert add(add([], "a" * 40), "b" * 40, limit=0) == []
    assert add([], "a" * 40, limit=-1) == []


def test_input_is_not_modified_and_entries_are_copies() -> None:
    original = add([], "a" * 40)
    snapshot = [dict(entry) for entry in original]
    updated = add(original, "b" * 40)
    updated[0]["revision"] = "changed"
    assert original == snapshot


def test_multi_source_entries_carry_revisions_and_sources() -> None:
    history = append(
        [],
        revisions=("a" * 40, "b" * 40),
        sources=[SRC, SRC2],
        deployed_at="t1",
        started_at="t0",
        initiated_by={"automated": True},
    )
    entry = history[0]
    assert entry["revisions"] == ["a" * 40, "b" * 40]
    assert entry["sources"] == [SRC, SRC2]
    assert entry["revision"] == "a" * 40
    assert "source" not in entry
    assert entry["initiatedBy"] == {"username": "", "automated": True}


def test_find() -> None:
    history: list[dict[str, object]] = []
    for n in range(3):
        history = add(history, f"{n:040x}")
    found = find(history, 1)
    assert found is not None and found["revision"] == f"{1:040x}"
    assert find(history, 7) is None
    assert find([{"id": True, "revision": "x"}], 1) is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"revisions": ()}, "revisions"),
        ({"revisions": ("a", "b")}, "one per source"),
        ({"deployed_at": ""}, "deployedAt"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "revisions": "a" * 40,
        "sources": [SRC],
        "deployed_at": "t1",
        "started_at": "t0",
        "initiated_by": BY,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        append([], **args)
