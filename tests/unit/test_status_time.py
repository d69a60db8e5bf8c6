"""Status times: written once a second, read back as instants (plain data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tether.controller.status import now_iso, parse_time


def test_now_iso_is_the_current_second_in_status_format() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    written = now_iso()
    after = datetime.now(UTC)
    parsed = datetime.strptime(written, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= parsed <= after
    assert now_iso() >= written


def test_a_status_time_reads_back_as_its_instant() -> None:
    instant = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time(now_iso()) is not None
    assert parse_time("2026-01-02T03:04:05Z") == instant
    assert parse_time("2026-01-02T03:04:05") == instant  # no zone: UTC, the only zone status times are in
    assert parse_time("2026-01-02T04:04:05+01:00") == instant
    assert parse_time("2026-01-02T03:04:05.5Z") == instant + timedelta(milliseconds=500)


def test_what_is_not_a_time_reads_as_none() -> None:
    assert parse_time("") is None
    assert parse_time("yesterday") is None
