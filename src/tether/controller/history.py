"""``status.history``: what each full successful sync deployed, in Argo CD's shape, for rollback.

An entry is a plain dict, oldest first::

    {"id": 3, "revision": "<sha>", "source": {...},                 # one source
     "deployedAt": "...", "deployStartedAt": "...",
     "initiatedBy": {"username": "alice", "automated": False}}

An app with several sources records ``"revisions"`` and ``"sources"`` (one per source, in
order) as Argo CD does, and also ``"revision"``: the first source's, so a one-line listing
always has something to show. Ids grow by one from the newest entry's (0 for the first), so
an id never names two deployments while it is kept; the oldest entries go beyond ``limit``
(``revisionHistoryLimit``, 10 by default). As in Argo CD, a limit of 0 or less keeps none.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_LIMIT = 10


def append(
    history: Sequence[Mapping[str, Any]],
    *,
    revisions: str | Sequence[str],
    sources: Sequence[Mapping[str, Any]],
    deployed_at: str,
    started_at: str,
    initiated_by: Mapping[str, Any],
    limit: int = DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """A new history list: ``history`` plus an entry for this deployment, cut to the newest ``limit``.

    ``revisions`` has one revision per source (a single string for a one-source app).
    The input list and its entries are left untouched.
    """
    revs = [revisions] if isinstance(revisions, str) else list(revisions)
    if not revs or not all(isinstance(r, str) and r for r in revs):
        raise ValueError(f"history: revisions must be one non-empty revision per source, got {revs!r}")
    if len(sources) != len(revs):
        raise ValueError(f"history: {len(revs)} revision(s) for {len(sources)} source(s); need one per source")
    for field, value in (("deployedAt", deployed_at), ("deployStartedAt", started_at)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"history: {field} must be a timestamp string, got {value!r}")
    entry: dict[str, Any] = {
        "id": next_id(history),
        "revision": revs[0],
        "deployedAt": deployed_at,
        "deployStartedAt": started_at,
        "initiatedBy": {
            "username": str(initiated_by.get("username") or ""),
            "automated": bool(initiated_by.get("automated", False)),
        },
    }
    if len(revs) == 1:
        entry["source"] = copy.deepcopy(dict(sources[0]))
    else:
        entry["revisions"] = revs
        entry["sources"] = [copy.deepcopy(dict(source)) for source in sources]
    kept = [copy.deepcopy(dict(old)) for old in history]
    kept.append(entry)
    return kept[-limit:] if limit > 0 else []


def next_id(history: Sequence[Mapping[str, Any]]) -> int:
    """The id the next entry gets: one more than the largest kept, 0 for an empty history."""
    ids = [entry["id"] for entry in history if _is_id(entry.get("id"))]
    return max(ids) + 1 if ids else 0


def find(history: Sequence[Mapping[str, Any]], id: int) -> dict[str, Any] | None:
    """The entry with ``id`` (a copy), or None when it is not (or no longer) kept."""
    for entry in history:
        if _is_id(entry.get("id")) and entry["id"] == id:
            return copy.deepcopy(dict(entry))
    return None


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
