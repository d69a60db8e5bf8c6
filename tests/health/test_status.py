"""App health from resource healths: the worst wins, in Argo CD's order; no health does not count."""

from __future__ import annotations

import itertools

import pytest

from tether.health import SEVERITY_ORDER, Health, HealthStatus, aggregate, is_worse

H = HealthStatus


def test_order_is_argo_cds() -> None:
    assert SEVERITY_ORDER == (H.HEALTHY, H.SUSPENDED, H.PROGRESSING, H.MISSING, H.DEGRADED, H.UNKNOWN)
    assert {status.value for status in HealthStatus} == {
        "Healthy",
        "Progressing",
        "Degraded",
        "Suspended",
        "Missing",
        "Unknown",
    }


@pytest.mark.parametrize(("better", "worse"), list(itertools.combinations(SEVERITY_ORDER, 2)))
def test_the_worse_status_decides(better: HealthStatus, worse: HealthStatus) -> None:
    assert is_worse(better, worse)
    assert not is_worse(worse, better)
    assert aggregate([Health(better), Health(worse), Health(better)]) is worse
    assert aggregate([Health(worse), Health(better)]) is worse


def test_resources_without_health_do_not_count() -> None:
    assert aggregate([None, Health(H.PROGRESSING, "rolling out"), None]) is H.PROGRESSING
    assert aggregate([None, None]) is H.HEALTHY
    assert aggregate([]) is H.HEALTHY


def test_missing_counts_only_when_the_caller_says_so() -> None:
    assert aggregate([Health(H.SUSPENDED), Health(H.MISSING)]) is H.MISSING
    assert aggregate([Health(H.MISSING), Health(H.DEGRADED)]) is H.DEGRADED


def test_equal_statuses_are_not_worse() -> None:
    assert not any(is_worse(status, status) for status in HealthStatus)
