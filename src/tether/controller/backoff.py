"""How long the controller waits before self-healing again, and before retrying a failed sync.

Both follow Argo CD so that apps migrated from it behave the same:

- self-heal: Argo CD's ``--self-heal-backoff-*`` defaults (2 s, factor 3, cap 300 s), counted
  in attempts at the same revision: 0, 2, 6, 18, 54, 162, then 300 s for ever. The first
  heal after a successful sync is immediate; a drift that keeps coming back is healed ever
  less often instead of in a tight loop against whoever keeps changing the object.
- retry: ``RetryStrategy.NextRetryAt``: ``duration * factor ** retry_count``, capped at
  ``max_duration`` when that is positive (defaults 5 s, ×2, 3 m), so the first retry waits
  ``duration``.
"""

from __future__ import annotations

import math

SELF_HEAL_FIRST = 2.0
SELF_HEAL_FACTOR = 3.0
SELF_HEAL_CAP = 300.0

RETRY_DURATION = 5.0
RETRY_FACTOR = 2.0
RETRY_MAX_DURATION = 180.0


def self_heal_delay(attempt: int) -> float:
    """Seconds to wait after the last operation finished before self-heal ``attempt + 1`` at one revision.

    ``attempt`` is how many self-heal syncs already ran at this revision (0 after a normal
    sync): 0 → 0 s, 1 → 2 s, 2 → 6 s … 5 → 162 s, then 300 s.
    """
    if attempt < 0:
        raise ValueError(f"self-heal attempt must be 0 or more, not {attempt}")
    if attempt == 0:
        return 0.0
    return _capped(SELF_HEAL_FIRST, SELF_HEAL_FACTOR, attempt - 1, SELF_HEAL_CAP)


def retry_delay(
    duration_s: float = RETRY_DURATION,
    factor: float = RETRY_FACTOR,
    max_duration_s: float = RETRY_MAX_DURATION,
    retry_count: int = 0,
) -> float:
    """Seconds before retry number ``retry_count + 1`` of a failed sync (Argo CD's ``NextRetryAt``).

    ``max_duration_s`` ≤ 0 means no cap, as in Argo CD.
    """
    if retry_count < 0:
        raise ValueError(f"sync retry count must be 0 or more, not {retry_count}")
    if duration_s < 0:
        raise ValueError(f"syncPolicy.retry.backoff.duration must not be negative, not {duration_s:g}s")
    if factor < 0:
        raise ValueError(f"syncPolicy.retry.backoff.factor must not be negative, not {factor:g}")
    return _capped(duration_s, factor, retry_count, max_duration_s if max_duration_s > 0 else math.inf)


def retry_allowed(limit: int, retry_count: int) -> bool:
    """Whether a failed sync that has been retried ``retry_count`` times may be retried again.

    Argo CD: a negative ``limit`` retries for ever; 0 never retries.
    """
    return limit < 0 or retry_count < limit


def _capped(first: float, factor: float, exponent: int, cap: float) -> float:
    """``first * factor ** exponent``, at most ``cap``, without overflowing for large exponents."""
    if first == 0:
        return 0.0
    try:
        value = float(first) * float(factor) ** exponent
    except OverflowError:
        value = math.inf
    return min(cap, value)
