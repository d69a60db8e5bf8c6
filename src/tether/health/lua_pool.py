"""A fixed pool of threads that run Lua health scripts, off the event loop, with a bound on queued work.

Lua runs with the GIL released (lupa), so a script busy for its full time limit costs one
worker thread and never the event loop: an ``async`` caller awaits a future. A script runs
on one worker at a time (its Lua state is not shared), and a worker never waits for a busy
script: runs of the same script queue behind each other while other scripts use the other
workers. No thread is started per run.

The instruction hook stops a script between VM instructions; a single C call (a
pathological ``string.find``) can outlast it. A watchdog thread answers such a run
Unknown at ``seconds + HARD_STOP_GRACE``, marks its script abandoned (never run again in
this process), retires the stuck worker and starts a replacement, at most
``max_stuck`` times at once, so threads stay bounded: ``workers + 1 + max_stuck``.

Public surface::

    pool = LuaPool(workers=4, max_queued=1024, max_stuck=8)
    pool.run(script, obj, open_libs=False) -> ScriptResult          # blocks the calling thread
    await pool.run_async(script, obj, open_libs=False) -> ScriptResult
    pool.queued -> int; pool.threads -> int; pool.close()
    default_pool() -> LuaPool                                        # the process's shared pool
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.health.lua_sandbox import CompiledScript, ScriptResult

DEFAULT_WORKERS = max(2, min(4, os.cpu_count() or 2))
DEFAULT_MAX_QUEUED = 1024
DEFAULT_MAX_STUCK = 8
# How long past its wall-clock limit a run may take before the watchdog answers for it.
HARD_STOP_GRACE = 1.0


class _Slots:
    """A counting semaphore that threads and any number of event loops can wait on (no polling)."""

    def __init__(self, size: int) -> None:
        self._size = self._free = size
        self._lock = threading.Lock()
        self._waiters: deque[Callable[[], bool]] = deque()  # each hands a slot over; False: nobody took it

    def acquire(self) -> None:
        with self._lock:
            if self._free:
                self._free -= 1
                return
            granted = threading.Event()

            def grant() -> bool:
                granted.set()
                return True

            self._waiters.append(grant)
        granted.wait()  # the releasing thread hands its slot over directly

    async def acquire_async(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free:
                self._free -= 1
                return
            future: asyncio.Future[None] = loop.create_future()

            def grant() -> bool:
                try:
                    loop.call_soon_threadsafe(self._hand_over, future)
                except RuntimeError:  # that loop is closed: nobody waits there any more
                    return False
                return True

            self._waiters.append(grant)
        try:
            await future
        except asyncio.CancelledError:
            with self._lock:
                waiting = grant in self._waiters
                if waiting:
                    self._waiters.remove(grant)
            if not waiting and future.done() and not future.cancelled():
                self.release()  # granted just as we were cancelled: pass the slot on
            raise  # otherwise never granted, or _hand_over will see the cancel and pass the slot on

    @property
    def taken(self) -> int:
        with self._lock:
            return self._size - self._free

    def _hand_over(self, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            self.release()
        else:
            future.set_result(None)

    def release(self) -> None:
        while True:
            with self._lock:
                if not self._waiters:
                    self._free += 1
                    return
                grant = self._waiters.popleft()
            if grant():
                return


@dataclass(eq=False)
class _Job:
    script: CompiledScript
    obj: Mapping[str, Any]
    open_libs: bool
    future: concurrent.futures.Future[ScriptResult] = field(default_factory=concurrent.futures.Future)
    released: bool = False


@dataclass(eq=False)
class _Worker:
    thread: threading.Thread | None = None
    job: _Job | None = None
    started: float = 0.0
    retired: bool = False


class LuaPool:
    """Worker threads for Lua health scripts; see the module docstring."""

    def __init__(
        self,
        workers: int = DEFAULT_WORKERS,
        *,
        max_queued: int = DEFAULT_MAX_QUEUED,
        max_stuck: int = DEFAULT_MAX_STUCK,
        grace: float = HARD_STOP_GRACE,
    ) -> None:
        self.workers = workers
        self.max_stuck = max_stuck
        self.grace = grace
        self._slots = _Slots(max_queued)  # queued and running runs together
        self._changed = threading.Condition()
        self._ready: deque[CompiledScript] = deque()
        self._pending: dict[CompiledScript, deque[_Job]] = {}
        self._busy: set[CompiledScript] = set()
        self._workers: list[_Worker] = []
        self._stuck = 0
        self._watchdog: threading.Thread | None = None
        self._closed = False
        self._names = itertools.count(1)

    # ----------------------------------------------------------------- callers

    def run(self, script: CompiledScript, obj: Mapping[str, Any], *, open_libs: bool = False) -> ScriptResult:
        """Run ``script`` on ``obj`` in the pool and wait for its verdict (blocks this thread)."""
        immediate = script.answer_without_running()
        if immediate is not None:
            return immediate
        self._slots.acquire()
        return self._submit(script, obj, open_libs).result()

    async def run_async(
        self, script: CompiledScript, obj: Mapping[str, Any], *, open_libs: bool = False
    ) -> ScriptResult:
        """Run ``script`` on ``obj`` in the pool; the event loop stays free while it runs or queues."""
        immediate = script.answer_without_running()
        if immediate is not None:
            return immediate
        await self._slots.acquire_async()
        job_future = self._submit(script, obj, open_libs)
        return await asyncio.wrap_future(job_future)

    @property
    def queued(self) -> int:
        """Runs queued or running now (at most ``max_queued``; more callers wait for room)."""
        return self._slots.taken

    @property
    def threads(self) -> int:
        """Live threads of this pool: workers (stuck ones included) and the watchdog."""
        with self._changed:
            alive = [w for w in self._workers if w.thread is not None and w.thread.is_alive()]
            return len(alive) + (1 if self._watchdog is not None and self._watchdog.is_alive() else 0)

    def close(self) -> None:
        """Stop the workers once they are idle; queued runs are answered first."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    # ----------------------------------------------------------------- scheduling

    def _submit(
        self, script: CompiledScript, obj: Mapping[str, Any], open_libs: bool
    ) -> concurrent.futures.Future[ScriptResult]:
        job = _Job(script, obj, open_libs)
        with self._changed:
            if self._closed:
                self._release(job)
                raise RuntimeError("the Lua pool is closed")
            if script.abandoned:  # abandoned since the caller looked
                _settle(job.future, script.answer_without_running())
                self._release(job)
                return job.future
            self._start_threads()
            self._pending.setdefault(script, deque()).append(job)
            if script not in self._busy:
                self._busy.add(script)
                self._ready.append(script)
            self._changed.notify_all()
        return job.future

    def _start_threads(self) -> None:
        while sum(1 for w in self._workers if not w.retired) < self.workers:
            self._spawn()
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name="lua watchdog", daemon=True)
            self._watchdog.start()

    def _spawn(self) -> None:
        worker = _Worker()
        worker.thread = threading.Thread(
            target=self._work, args=(worker,), name=f"lua worker {next(self._names)}", daemon=True
        )
        self._workers.append(worker)
        worker.thread.start()

    def _release(self, job: _Job) -> None:
        if not job.released:
            job.released = True
            self._slots.release()

    def _work(self, worker: _Worker) -> None:
        while True:
            with self._changed:
                while not self._ready and not self._closed:
                    self._changed.wait()
                if not self._ready:
                    self._workers.remove(worker)
                    self._changed.notify_all()
                    return
                script = self._ready.popleft()
                job = self._pending[script].popleft()
                worker.job, worker.started = job, time.monotonic()
                self._changed.notify_all()  # the watchdog learns of a new deadline
            outcome: ScriptResult | BaseException | None = None
            if job.future.set_running_or_notify_cancel():
                try:
                    outcome = script.execute(job.obj, job.open_libs)
                except BaseException as exc:  # handed to the caller, never lost in this thread
                    outcome = exc
            with self._changed:
                self._release(job)  # before the caller hears back, so its next run finds room
                worker.job = None
                self._after(script)
                if worker.retired:  # the watchdog gave up on this run and replaced this thread
                    self._stuck -= 1
                    self._workers.remove(worker)
                    self._changed.notify_all()
            if outcome is not None:
                _settle(job.future, outcome)
            if worker.retired:
                return

    def _after(self, script: CompiledScript) -> None:
        """Requeue ``script`` if more of its runs wait (behind other scripts' runs), else idle it."""
        queue = self._pending.get(script)
        if queue:
            self._ready.append(script)
            self._changed.notify_all()
        else:
            self._pending.pop(script, None)
            self._busy.discard(script)

    def _watch(self) -> None:
        with self._changed:
            while not (self._closed and not self._workers):
                now = time.monotonic()
                deadlines = []
                for worker in self._workers:
                    job = worker.job
                    if job is None or worker.retired:
                        continue
                    deadline = worker.started + job.script.limits.seconds + self.grace
                    if now >= deadline:
                        self._abandon(worker, job)
                    else:
                        deadlines.append(deadline)
                self._changed.wait(timeout=min(deadlines) - now if deadlines else None)

    def _abandon(self, worker: _Worker, job: _Job) -> None:
        """The run is stuck inside one C call: answer for it, never run its script again, replace the thread."""
        script = job.script
        script.abandon()
        _settle(job.future, script.hard_stopped())
        self._release(job)
        for waiting in self._pending.pop(script, deque()):
            _settle(waiting.future, script.answer_without_running())
            self._release(waiting)
        worker.retired = True
        if self._stuck < self.max_stuck:
            self._stuck += 1
            self._spawn()
        else:
            self._stuck += 1  # no replacement: capacity shrinks rather than threads growing


def _settle(future: concurrent.futures.Future[ScriptResult], outcome: Any) -> None:
    """Resolve ``future`` unless someone (the watchdog, a cancelling caller) already did."""
    if future.done():
        return
    try:
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except concurrent.futures.InvalidStateError:
        pass


_DEFAULT: LuaPool | None = None
_DEFAULT_LOCK = threading.Lock()


def default_pool() -> LuaPool:
    """The pool every ``LuaChecks`` uses unless given its own."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = LuaPool()
        return _DEFAULT
