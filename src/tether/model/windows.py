"""Sync windows: cron-scheduled spans of time in which a project's apps may or may not sync.

The rules are Argo CD's (``SyncWindows.Matches`` then ``CanSync``):

- A window applies to an app when any of its selectors matches: an ``applications`` glob
  the app's name, a ``namespaces`` glob the destination namespace, a ``clusters`` glob the
  destination cluster's name or server (with ``andOperator: true`` every selector given
  must match instead). No window applies → the sync is allowed.
- A window is active from each time its 5-field cron ``schedule`` fires, for ``duration``.
- An active matching ``deny`` window blocks, unless the sync is manual and every active
  deny window has ``manualSync: true``. Deny wins over allow.
- Otherwise an active matching ``allow`` window allows.
- Otherwise, if any ``allow`` window matches, the sync is blocked (outside every allow
  window), unless it is manual and every one of them has ``manualSync: true``.

One deliberate difference: the schedule is read in ``timeZone``'s wall clock at the time
it fires, so a ``0 9 * * *`` window in ``Europe/Berlin`` opens at 09:00 local time both in
summer and in winter. (Argo CD shifts the schedule by the zone's offset *now*, which opens
it an hour off for checks made across a DST change.) A window starting exactly now is
active (Argo CD counts it from the next instant).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic.alias_generators import to_camel

from tether.model.application import parse_duration

# --------------------------------------------------------------------- globs


def glob_match(pattern: str, value: str, separator: str | None = None) -> bool:
    """Argo CD's glob (gobwas/glob): ``*`` any run (not crossing ``separator``), ``**`` any run at all,
    ``?`` one character, ``[a-z]`` / ``[!a]`` classes, ``{a,b}`` alternatives; ``*`` alone matches everything.
    A pattern that does not compile matches nothing, as in Argo CD."""
    if pattern == "*":
        return True
    compiled = _compile(pattern, separator)
    return compiled is not None and compiled.fullmatch(value) is not None


@lru_cache(maxsize=1024)
def _compile(pattern: str, separator: str | None) -> re.Pattern[str] | None:
    any_char = f"[^{re.escape(separator)}]" if separator else "."
    out: list[str] = []
    depth = 0
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "*":
            run = len(pattern[i:]) - len(pattern[i:].lstrip("*"))
            out.append(".*" if run > 1 or not separator else f"{any_char}*")
            i += run
            continue
        if char == "?":
            out.append(any_char)
        elif char == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                return None
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            escaped = "".join("-" if c == "-" and 0 < k < len(body) - 1 else re.escape(c) for k, c in enumerate(body))
            out.append(("[^" if negate else "[") + escaped + "]")
            i = end + 1
            continue
        elif char == "{":
            depth += 1
            out.append("(?:")
        elif char == "}" and depth:
            depth -= 1
            out.append(")")
        elif char == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(char))
        i += 1
    if depth:
        return None
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error:
        return None


# --------------------------------------------------------------------- windows


class SyncWindow(BaseModel):
    """One window: ``allow`` or ``deny``, from each cron ``schedule`` fire for ``duration``, for the selected apps."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    kind: Literal["allow", "deny"]
    schedule: str
    duration: str
    applications: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    manual_sync: bool = False
    time_zone: str = "UTC"
    and_operator: bool = False
    description: str = ""

    @field_validator("schedule")
    @classmethod
    def _cron(cls, schedule: str) -> str:
        if len(schedule.split()) != 5 or not croniter.is_valid(schedule):
            raise ValueError(f"schedule {schedule!r}: expected a 5-field cron expression like '0 22 * * *'")
        return schedule

    @field_validator("duration")
    @classmethod
    def _duration(cls, duration: str) -> str:
        if parse_duration(duration) <= 0:
            raise ValueError(f"duration {duration!r}: must be longer than zero")
        return duration

    @field_validator("time_zone", mode="before")
    @classmethod
    def _zone(cls, zone: str | None) -> str:
        if not zone:
            return "UTC"
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timeZone {zone!r}: not an IANA time zone (e.g. 'Europe/Berlin', 'UTC')") from None
        return zone

    @field_validator("applications", "namespaces", "clusters", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return () if value is None else value

    @model_validator(mode="after")
    def _selects_something(self) -> Self:
        if not (self.applications or self.namespaces or self.clusters):
            raise ValueError("a sync window needs one of applications, namespaces or clusters")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def length(self) -> timedelta:
        return timedelta(seconds=parse_duration(self.duration))

    def describe(self) -> str:
        """``deny '0 22 * * *' for 1h (Europe/Berlin)``: how messages name a window."""
        zone = "" if self.time_zone == "UTC" else f" ({self.time_zone})"
        return f"{self.kind} {self.schedule!r} for {self.duration}{zone}"

    def matches(self, app: str, namespace: str, clusters: Iterable[str]) -> bool:
        """Whether this window applies to an app of that name, destination namespace and cluster names/servers."""
        names = [c for c in clusters if c]
        results = []
        if self.applications:
            results.append(any(glob_match(p, app) for p in self.applications))
        if self.namespaces:
            results.append(any(glob_match(p, namespace) for p in self.namespaces))
        if self.clusters:
            results.append(any(glob_match(p, c) for p in self.clusters for c in names))
        return all(results) if self.and_operator else any(results)

    def last_start(self, now: datetime) -> datetime:
        """The latest time at or before ``now`` when the schedule fired, in the window's zone."""
        local = _aware(now).astimezone(self.zone)
        minute = local.replace(second=0, microsecond=0)
        if croniter.match(self.schedule, minute):
            return minute
        start: datetime = croniter(self.schedule, local).get_prev(datetime)
        return start

    def active(self, now: datetime) -> bool:
        """Whether ``now`` falls inside one of this window's spans (a fire time ≤ now < fire + duration)."""
        start = self.last_start(now).astimezone(UTC)
        return start <= _aware(now).astimezone(UTC) < start + self.length

    def next_start(self, now: datetime) -> datetime:
        """The first fire time after ``now``, in UTC: when a closed window opens next."""
        local = _aware(now).astimezone(self.zone)
        start: datetime = croniter(self.schedule, local).get_next(datetime)
        return start.astimezone(UTC)


def _aware(moment: datetime) -> datetime:
    """A naive datetime is UTC (the controller's clock)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class WindowVerdict:
    """Whether a sync may run now, why (fit for a condition message), and the matching windows active now."""

    allowed: bool
    reason: str
    active: list[SyncWindow] = field(default_factory=list)


@dataclass(frozen=True)
class SyncWindows:
    """A project's windows, judged together for one app at one moment."""

    windows: Sequence[SyncWindow] = ()

    def matching(self, app: str, namespace: str, cluster: str | Iterable[str]) -> list[SyncWindow]:
        clusters = [cluster] if isinstance(cluster, str) else list(cluster)
        return [w for w in self.windows if w.matches(app, namespace, clusters)]

    def verdict(
        self, app: str, namespace: str, cluster: str | Iterable[str], now: datetime, manual: bool
    ) -> WindowVerdict:
        """Argo CD's ``CanSync`` for the windows that match the app.

        ``cluster`` is the destination cluster's name or server, or both (any iterable of
        names): a ``clusters`` glob matching either selects the window, as in Argo CD.
        """
        windows = self.matching(app, namespace, cluster)
        if not windows:
            return WindowVerdict(True, "no sync window applies")
        active = [w for w in windows if w.active(now)]
        denies = [w for w in active if w.kind == "deny"]
        allows = [w for w in active if w.kind == "allow"]
        if denies:
            names = ", ".join(w.describe() for w in denies)
            if manual and all(w.manual_sync for w in denies):
                return WindowVerdict(True, f"manual sync permitted during deny window(s) {names}", active)
            return WindowVerdict(False, f"sync blocked by active deny window(s) {names}", active)
        if allows:
            return WindowVerdict(True, f"sync allowed by active allow window(s) {allows[0].describe()}", active)
        inactive = [w for w in windows if w.kind == "allow"]
        if inactive:
            opens = min(w.next_start(now) for w in inactive)
            names = ", ".join(w.describe() for w in inactive)
            if manual and all(w.manual_sync for w in inactive):
                return WindowVerdict(True, f"manual sync permitted outside allow window(s) {names}", active)
            return WindowVerdict(
                False, f"sync blocked outside allow window(s) {names}; next opens {opens:%Y-%m-%dT%H:%M:%SZ}", active
            )
        return WindowVerdict(True, "no allow window applies and no deny window is active", active)
