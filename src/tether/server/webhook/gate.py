"""How many pushes may wait for the webhook worker, counted across processes.

The receiver reserves room before it answers 202 and the worker releases it as it takes pushes,
so a full queue is answered 503 wherever the receiver runs: in `tether serve`'s front process
(``tether.server.front``) or, in tests, beside the controller. The counts live in shared memory.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from typing import Any

from tether.server.webhook.events import Event, Push


class PushGate:
    """At most ``limit`` pushes accepted and not yet taken by the worker; refusals are counted."""

    def __init__(self, limit: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.limit = limit
        self._waiting: Any = ctx.Value("q", 0)
        self._refused: Any = ctx.Value("q", 0)

    def reserve(self, pushes: int) -> bool:
        """Room for ``pushes`` more: True and counted, or False (the sender is told to retry)."""
        with self._waiting.get_lock():
            if self._waiting.value + pushes > self.limit:
                with self._refused.get_lock():
                    self._refused.value += 1
                return False
            self._waiting.value += pushes
            return True

    def admit(self, events: Sequence[Event]) -> bool:
        """Room for a delivery's pushes (a delivery without any always fits): ``reserve`` for its count."""
        pushes = sum(1 for e in events if isinstance(e, Push))
        return not pushes or self.reserve(pushes)

    def release(self, pushes: int) -> None:
        """The worker took ``pushes``."""
        with self._waiting.get_lock():
            self._waiting.value = max(0, self._waiting.value - pushes)

    @property
    def waiting(self) -> int:
        """Pushes accepted and not yet taken (in the pipe between the processes or in the worker's inbox)."""
        return int(self._waiting.value)

    @property
    def refused(self) -> int:
        """Deliveries answered 503 since start."""
        return int(self._refused.value)
