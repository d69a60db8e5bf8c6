"""Sync windows follow Argo CD's CanSync; times are fixed, zones include one with DST."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from tether.model import SyncWindow, SyncWindows
from tether.model.windows import glob_match


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def window(kind: str = "deny", schedule: str = "0 22 * * *", duration: str = "1h", **fields: Any) -> SyncWindow:
    fields.setdefault("applications", ["*"])
    return SyncWindow.model_validate({"kind": kind, "schedule": schedule, "duration": duration, **fields})


def verdict(windows: list[SyncWindow], now: str, manual: bool = False, app: str = "web", ns: str = "prod"):
    return SyncWindows(windows).verdict(app, ns, ("in-cluster", "https://kubernetes.default.svc"), at(now), manual)


def test_no_windows_allow_everything() -> None:
    result = verdict([], "2024-01-01T22:30:00")
    assert result.allowed and result.active == []


def test_active_span_is_fire_time_up_to_duration() -> None:
    deny = window()
    assert not deny.active(at("2024-01-01T21:59:59"))
    assert deny.active(at("2024-01-01T22:00:00"))
    assert deny.active(at("2024-01-01T22:59:59"))
    assert not deny.active(at("2024-01-01T23:00:00"))
    long = window(schedule="0 23 * * *", duration="3h")  # spans midnight
    assert long.active(at("2024-01-02T01:30:00"))


def test_active_deny_blocks_and_names_the_window() -> None:
    result = verdict([window()], "2024-01-01T22:15:00")
    assert not result.allowed
    assert "deny '0 22 * * *' for 1h" in result.reason
    assert result.active == [window()]
    assert verdict([window()], "2024-01-01T21:15:00").allowed


def test_manual_sync_passes_a_deny_only_when_every_active_deny_allows_it() -> None:
    lenient = window(manual_sync=True)
    strict = window(schedule="30 21 * * *", duration="2h")
    assert not verdict([lenient], "2024-01-01T22:15:00").allowed  # automated: blocked anyway
    assert verdict([lenient], "2024-01-01T22:15:00", manual=True).allowed
    assert not verdict([lenient, strict], "2024-01-01T22:15:00", manual=True).allowed


def test_deny_wins_over_an_active_allow() -> None:
    allow = window(kind="allow", schedule="0 20 * * *", duration="4h")
    result = verdict([allow, window()], "2024-01-01T22:15:00")
    assert not result.allowed and len(result.active) == 2
    assert verdict([allow, window()], "2024-01-01T21:15:00").allowed


def test_outside_every_allow_window_is_blocked() -> None:
    office = window(kind="allow", schedule="0 9 * * 1-5", duration="8h")
    assert verdict([office], "2024-01-02T10:00:00").allowed  # Tuesday, 10:00
    closed = verdict([office], "2024-01-02T18:00:00")
    assert not closed.allowed
    assert "outside allow window" in closed.reason and "next opens 2024-01-03T09:00:00Z" in closed.reason
    assert not verdict([office], "2024-01-06T10:00:00").allowed  # Saturday


def test_one_active_allow_is_enough_even_when_another_is_closed() -> None:
    morning = window(kind="allow", schedule="0 6 * * *", duration="1h")
    evening = window(kind="allow", schedule="0 18 * * *", duration="1h")
    assert verdict([morning, evening], "2024-01-02T18:30:00").allowed


def test_manual_sync_outside_allow_windows_needs_manual_sync_on_all_of_them() -> None:
    morning = window(kind="allow", schedule="0 6 * * *", duration="1h", manual_sync=True)
    evening = window(kind="allow", schedule="0 18 * * *", duration="1h")
    assert verdict([morning], "2024-01-02T12:00:00", manual=True).allowed
    assert not verdict([morning], "2024-01-02T12:00:00", manual=False).allowed
    assert not verdict([morning, evening], "2024-01-02T12:00:00", manual=True).allowed


def test_windows_apply_by_application_namespace_or_cluster() -> None:
    by_app = window(applications=["*-prod"])
    by_namespace = window(applications=[], namespaces=["kube-*"])
    by_cluster_name = window(applications=[], clusters=["in-cluster"])
    by_server = window(applications=[], clusters=["https://kubernetes.default.*"])
    night = "2024-01-01T22:15:00"
    assert not verdict([by_app], night, app="shop-prod").allowed
    assert verdict([by_app], night, app="shop-dev").allowed
    assert not verdict([by_namespace], night, ns="kube-system").allowed
    assert verdict([by_namespace], night, ns="prod").allowed
    assert not verdict([by_cluster_name], night).allowed
    assert not verdict([by_server], night).allowed
    elsewhere = SyncWindows([by_cluster_name]).verdict("web", "prod", "https://other:6443", at(night), False)
    assert elsewhere.allowed and elsewhere.reason == "no sync window applies"


def test_and_operator_needs_every_selector() -> None:
    both = window(applications=["web"], namespaces=["prod"], and_operator=True)
    either = window(applications=["web"], namespaces=["prod"])
    night = "2024-01-01T22:15:00"
    assert not verdict([both], night).allowed
    assert verdict([both], night, ns="dev").allowed
    assert not verdict([either], night, ns="dev").allowed


def test_schedule_is_read_in_the_zones_wall_clock_across_dst() -> None:
    # 09:00 in New York is 14:00 UTC in winter (EST) and 13:00 UTC in summer (EDT).
    allow = window(kind="allow", schedule="0 9 * * *", duration="1h", time_zone="America/New_York")
    assert verdict([allow], "2024-01-15T14:30:00").allowed
    assert not verdict([allow], "2024-01-15T13:30:00").allowed
    assert verdict([allow], "2024-07-15T13:30:00").allowed
    assert not verdict([allow], "2024-07-15T14:30:00").allowed
    # Naive datetimes are UTC, and an aware one in another zone is the same instant.
    assert allow.active(datetime(2024, 7, 15, 13, 30))
    assert allow.active(datetime.fromisoformat("2024-07-15T15:30:00+02:00"))


def test_a_fire_time_skipped_by_spring_forward_opens_at_the_jump() -> None:
    # 2024-03-10: New York clocks go from 02:00 EST straight to 03:00 EDT (07:00 UTC); 02:30 never happens.
    deny = window(schedule="30 2 * * *", duration="1h", time_zone="America/New_York")
    assert deny.active(at("2024-03-09T07:45:00"))  # the day before: 02:30 EST = 07:30 UTC
    assert deny.active(at("2024-03-10T07:10:00"))
    assert not deny.active(at("2024-03-10T08:10:00"))


def test_zone_defaults_to_utc_and_bad_values_are_refused() -> None:
    assert window().time_zone == "UTC" and window(time_zone="").time_zone == "UTC"
    for fields, message in [
        ({"kind": "maybe"}, "'allow' or 'deny'"),
        ({"schedule": "0 22 * *"}, "5-field cron"),
        ({"schedule": "0 22 * * * *"}, "5-field cron"),
        ({"schedule": "61 22 * * *"}, "5-field cron"),
        ({"duration": "1 hour"}, "invalid duration"),
        ({"duration": "0s"}, "longer than zero"),
        ({"time_zone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"applications": []}, "needs one of applications, namespaces or clusters"),
    ]:
        with pytest.raises(ValidationError, match=message):
            window(**fields)


@pytest.mark.parametrize(
    ("pattern", "value", "separator", "matches"),
    [
        ("*", "anything/at/all", "/", True),
        ("https://github.com/org/*", "https://github.com/org/repo", "/", True),
        ("https://github.com/org/*", "https://github.com/org/team/repo", "/", False),
        ("https://github.com/org/**", "https://github.com/org/team/repo", "/", True),
        ("*-prod", "shop-prod", None, True),
        ("*-prod", "shop/x-prod", None, True),
        ("web-?", "web-1", None, True),
        ("web-[0-9]", "web-a", None, False),
        ("web-[!0-9]", "web-a", None, True),
        ("{shop,cart}-*", "cart-prod", None, True),
        ("{shop,cart}-*", "tax-prod", None, False),
        ("[unclosed", "[unclosed", None, False),
    ],
)
def test_globs_are_gobwas(pattern: str, value: str, separator: str | None, matches: bool) -> None:
    assert glob_match(pattern, value, separator) is matches
