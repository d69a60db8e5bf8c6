"""Self-heal and retry delays match Argo CD's figures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.controller.backoff import retry_allowed, retry_delay, self_heal_delay
from tether.controller.operations import retrying_message
from tether.model.application import RetryStrategy


def test_self_heal_delays_are_argo_cds_sequence() -> None:
    assert [self_heal_delay(n) for n in range(9)] == [0, 2, 6, 18, 54, 162, 300, 300, 300]


def test_self_heal_delay_never_overflows() -> None:
    assert self_heal_delay(10_000) == 300


def test_retry_defaults_are_5s_doubling_capped_at_3m() -> None:
    assert [retry_delay(5, 2, 180, n) for n in range(8)] == [5, 10, 20, 40, 80, 160, 180, 180]
    assert retry_delay() == 5


def test_retry_without_cap_grows_and_zero_duration_stays_zero() -> None:
    assert retry_delay(5, 2, 0, 10) == 5 * 2**10
    assert retry_delay(0, 2, 0, 5000) == 0
    assert retry_delay(1, 10, 0, 5000) == float("inf")
    assert retry_delay(1, 10, 60, 5000) == 60


@given(st.floats(0.1, 600), st.floats(1, 10), st.floats(1, 3600), st.integers(0, 100))
def test_retry_delay_is_monotonic_and_capped(duration: float, factor: float, cap: float, n: int) -> None:
    assert retry_delay(duration, factor, cap, n) <= retry_delay(duration, factor, cap, n + 1) <= cap


def test_retry_limits() -> None:
    assert retry_allowed(-1, 1000)
    assert not retry_allowed(0, 0)
    assert retry_allowed(2, 1)
    assert not retry_allowed(2, 2)


@pytest.mark.parametrize(
    "call", [lambda: self_heal_delay(-1), lambda: retry_delay(5, 2, 180, -1), lambda: retry_delay(-5, 2, 180, 0)]
)
def test_bad_arguments_are_refused(call: object) -> None:
    with pytest.raises(ValueError, match="must"):
        call()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("hour", "minute", "clock"),
    [(0, 5, "12:05AM"), (9, 30, "9:30AM"), (12, 0, "12:00PM"), (15, 4, "3:04PM"), (23, 59, "11:59PM")],
)
def test_a_retry_says_when_in_go_kitchen_time_as_argo_cd(hour: int, minute: int, clock: str) -> None:
    at = datetime(2026, 12, 3, hour, minute, 42, tzinfo=UTC).timestamp()
    assert retrying_message("one or more objects failed to apply.", 2, at) == (
        f"one or more objects failed to apply. Retrying attempt #2 at {clock}."
    )


def test_an_applications_retry_strategy_uses_these_delays_and_never_overflows() -> None:
    strategy = RetryStrategy.model_validate(
        {"limit": -1, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}}
    )
    assert [strategy.delay(n) for n in range(8)] == [5, 10, 20, 40, 80, 160, 180, 180]
    # unlimited retries run for days at the cap: the thousandth-and-more delay is still the cap
    assert strategy.delay(5000) == 180 and strategy.allows(5000)
    assert not RetryStrategy(limit=2).allows(2) and RetryStrategy(limit=2).allows(1)
