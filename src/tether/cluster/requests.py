"""Requests sent to one cluster, counted by verb in the process, dry runs apart.

DESIGN.md budgets requests (a reconcile that finds nothing changed writes nothing, dry runs
included), so tests and benchmarks need to see them. Verbs follow the API server's
``apiserver_request_total``: GET, LIST, WATCH, CREATE, APPLY (server-side apply), PATCH,
UPDATE, DELETE; a request sent again after a connection failure counts again, as the server
sees it twice. Take a ``snapshot()`` before and after, subtract, and ask::

    before = cluster.requests.snapshot()
    ...
    spent = cluster.requests.snapshot() - before
    assert spent.writes == 0 and spent.dry_runs == 0
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

READ_VERBS = frozenset({"GET", "LIST", "WATCH"})
WRITE_VERBS = frozenset({"CREATE", "APPLY", "PATCH", "UPDATE", "DELETE"})


@dataclass(frozen=True)
class RequestCounts(Mapping[tuple[str, bool], int]):
    """An immutable count of requests keyed by (verb, dry_run); ``a - b`` is what was sent in between."""

    counts: Mapping[tuple[str, bool], int] = field(default_factory=dict)

    def __getitem__(self, key: tuple[str, bool]) -> int:
        return self.counts.get(key, 0)

    def __iter__(self) -> Iterator[tuple[str, bool]]:
        return iter(self.counts)

    def __len__(self) -> int:
        return len(self.counts)

    def __sub__(self, earlier: RequestCounts) -> RequestCounts:
        keys = set(self.counts) | set(earlier.counts)
        return RequestCounts({k: n for k in keys if (n := self[k] - earlier[k])})

    def of(self, verb: str, *, dry_run: bool = False) -> int:
        """Requests of ``verb`` (dry runs only when ``dry_run``)."""
        return self[(verb, dry_run)]

    @property
    def writes(self) -> int:
        """Write requests that were not dry runs."""
        return sum(n for (verb, dry), n in self.counts.items() if verb in WRITE_VERBS and not dry)

    @property
    def dry_runs(self) -> int:
        """Dry-run write requests (they cost the server as much as a write, and DESIGN.md budgets them)."""
        return sum(n for (_, dry), n in self.counts.items() if dry)

    @property
    def reads(self) -> int:
        return sum(n for (verb, _), n in self.counts.items() if verb in READ_VERBS)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        """``{"APPLY": 3, "APPLY(dry-run)": 2, ...}``, for JSON reports and messages."""
        return {f"{verb}{'(dry-run)' if dry else ''}": n for (verb, dry), n in sorted(self.counts.items())}

    def __str__(self) -> str:
        return ", ".join(f"{name}={n}" for name, n in self.as_dict().items()) or "none"


class RequestCounter:
    """The running count of one cluster's requests (one per ``Cluster``, never reset)."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, bool]] = Counter()

    def count(self, verb: str, dry_run: bool = False) -> None:
        self._counts[(verb, dry_run)] += 1

    def snapshot(self) -> RequestCounts:
        """The counts so far, frozen: subtract two snapshots to see what was sent between them."""
        return RequestCounts(dict(self._counts))
