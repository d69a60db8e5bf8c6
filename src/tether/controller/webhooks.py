"""From a pushed commit to the apps it changed: only an app whose render read a changed file renders again.

The receiver (``tether.server.webhook``) parses and checks a delivery, reserves room for its pushes
in the shared ``PushGate``, hands them over (``WebhookTrigger.accept``; in `tether serve` through a
queue from the front process) and answers at once; this worker does the rest, off the request path:

1. **Batch.** Every push waiting is taken at once, so a burst costs one pass: one lookup per
   repository, one ``git diff`` per repository and revision pair, one refresh per app.
2. **Match.** Repository URLs are compared by ``repository_identity`` (scheme, userinfo, port,
   ``.git``, case and the scp-like ssh form do not matter). A source matches when its
   ``targetRevision`` can name the pushed ref (``ref_matches``: the branch, the tag, the default
   branch for ``HEAD``, a tag inside a semver range). ``ref`` sources count.
3. **List.** Each repository with a matching source is listed once (``ls-remote``); the poller keeps
   that listing, so the next poll finds nothing new. The payload's commit ids are only a hint: what
   an app moves to is what the repository says its ``targetRevision`` names.
4. **Decide.** Each matching app's new revision is resolved from that listing. The paths its
   last render read (kept per source by the comparer: ``../base``, value files elsewhere, ``$ref``
   files) — or Argo CD's ``manifest-generate-paths`` annotation when the app has one — are
   checked against the changed files: the payload's list when it is complete, else one
   ``git diff --name-only`` per repository. An app with a changed input gets a ``webhook``
   refresh (resolve, render, compare, and sync if its policy says so). Any other app only *moves*
   to the new revision: no render, no sync; its status shows the revision compared. Moves are
   written a few seconds later (``MOVE_DELAY``), so a burst of pushes costs each app one status write.

Pull request events are kept (the last hundred) for the preview feature; they trigger nothing.
"""

from __future__ import annotations

import asyncio
import posixpath
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from tether.controller.sources import git_sources
from tether.errors import TetherError
from tether.model import Application
from tether.server.webhook.events import Event, PullRequest, Push
from tether.server.webhook.gate import PushGate
from tether.source.revisions import ref_matches
from tether.source.urls import normalise_url, repository_identity

if TYPE_CHECKING:
    from tether.controller.controller import Controller

log = structlog.get_logger(__name__)

DEFAULT_MAX_PENDING = 1000
KEPT_PULL_REQUESTS = 100
PATHS_ANNOTATION = "manifest-generate-paths"
REFRESH, MOVE = "refresh", "move"
MOVE_DELAY = 3.0  # seconds: the moves of pushes this close together are written once


@dataclass
class WebhookStats:
    """Counters since start, for /metrics and the tests."""

    pushes: int = 0  # pushes taken from the queue
    batches: int = 0  # passes over the queue (pushes / batches shows the coalescing)
    unmatched: int = 0  # pushes no app's source named
    refreshed: int = 0  # apps given a webhook refresh (may render)
    moved: int = 0  # apps moved to a new revision without a render
    diffs: int = 0  # git diffs computed (payloads without a complete file list)
    pull_requests: int = 0


@dataclass(frozen=True)
class _Match:
    app: str
    index: int  # the source's index in the app's sources
    url: str  # as the app spells it (credentials are looked up by it)
    revision: str  # its targetRevision


class WebhookTrigger:
    """A bounded inbox of pushes and the worker that turns them into refreshes (see the module docstring).

    ``offer`` and ``accept`` may be called from any thread (`tether serve` hands pushes over on a
    thread that reads them from the front process); the worker runs on the controller's loop.
    ``gate`` bounds the pushes waiting, shared with the receiver's process.
    """

    def __init__(self, controller: Controller, *, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self.controller = controller
        self.gate = PushGate(max_pending)
        self.pull_requests: deque[PullRequest] = deque(maxlen=KEPT_PULL_REQUESTS)
        self.stats = WebhookStats()
        self._inbox: deque[Push] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived: asyncio.Event | None = None

    @property
    def waiting(self) -> int:
        """Pushes accepted and not yet taken by the worker (wherever the receiver runs)."""
        return self.gate.waiting

    def offer(self, events: Sequence[Event]) -> bool:
        """Queue a delivery's pushes; False (nothing queued) when they do not all fit: the sender retries."""
        if not self.gate.admit(events):
            return False
        self.accept(events)
        return True

    def accept(self, events: Sequence[Event]) -> None:
        """Queue a delivery whose pushes already have room in ``gate`` (reserved by the receiver)."""
        pushes = [e for e in events if isinstance(e, Push)]
        with self._lock:
            self._inbox.extend(pushes)
            for event in events:
                if isinstance(event, PullRequest):
                    self.pull_requests.append(event)
                    self.stats.pull_requests += 1
        if pushes and self._loop is not None and self._arrived is not None:
            self._loop.call_soon_threadsafe(self._arrived.set)

    def take(self) -> list[Push]:
        """Every push waiting, oldest first (the worker's batch)."""
        with self._lock:
            batch = list(self._inbox)
            self._inbox.clear()
        self.gate.release(len(batch))
        return batch

    async def run(self) -> None:
        """Take every push waiting, handle them as one batch, repeat; an error loses that batch only."""
        self._loop, self._arrived = asyncio.get_running_loop(), asyncio.Event()
        while True:
            batch = self.take()
            if not batch:
                self._arrived.clear()
                if not self._inbox:
                    await self._arrived.wait()
                continue
            self.stats.pushes += len(batch)
            self.stats.batches += 1
            try:
                await self.handle(batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not end the worker: polling still catches the push
                log.exception("webhook batch failed", pushes=len(batch))

    async def handle(self, pushes: Sequence[Push]) -> None:
        """Refresh or move every app the pushes concern."""
        index = self._sources_by_repository()
        per_app: dict[str, list[tuple[_Match, list[Push]]]] = {}
        listed: dict[str, str] = {}  # repositories to list again: normalised URL -> as an app spells it
        for push in pushes:
            identities = {repository_identity(u) for u in push.repo_urls if u}
            matches = [m for identity in identities for m in index.get(identity, ())]
            if not matches:
                self.stats.unmatched += 1
                continue
            default_branch = push.default_branch
            for match in matches:
                fits = ref_matches(match.revision, push.ref, default_branch)
                if fits is None:
                    default_branch = await self._default_branch(match.url)
                    fits = ref_matches(match.revision, push.ref, default_branch)
                if not fits:
                    continue
                key = normalise_url(match.url)
                known = self.controller.refs_seen.get(key)
                if push.after and known is not None and known.refs.get(push.ref) == push.after:
                    continue  # a repeated delivery, or one for a tip already listed: nothing new to look at
                listed.setdefault(key, match.url)
                entries = per_app.setdefault(match.app, [])
                for known, seen in entries:
                    if known == match:
                        seen.append(push)
                        break
                else:
                    entries.append((match, [push]))
        await asyncio.gather(*(self._list(url) for url in listed.values()))
        diffs: dict[tuple[str, str, str], asyncio.Task[frozenset[str] | None]] = {}
        names = list(per_app)
        decisions = await asyncio.gather(*(self._decide(name, per_app[name], diffs) for name in names))
        # Refreshes at once; moves a few seconds later, so the moves of a burst of pushes cost each app one
        # reconcile and one status write (a move already scheduled just gets the newer target).
        for name, decision in zip(names, decisions, strict=True):
            if decision == REFRESH:
                self.controller.queue.add(name, "webhook")
            elif decision == MOVE:
                self.controller.queue.add_after(name, "moved", MOVE_DELAY)

    async def _list(self, url: str) -> None:
        """List the repository's refs afresh (one ``ls-remote``, shared by every app on it and by the poller).

        The payload's commit ids are not trusted: an app moves only to what the repository itself says
        its ``targetRevision`` names now, so a forged or replayed delivery can cause a refresh, never a
        deployment of a commit the ref does not point at.
        """
        c = self.controller
        c.git.forget_refs(url)
        try:
            refs = await c.git.repository(url, c.repo_credentials.lookup(url)).ls_remote()
        except TetherError as exc:
            log.info("webhook: cannot list the repository", repo=url, error=str(exc))
            return
        c.refs_seen[normalise_url(url)] = refs  # the next poll finds nothing new
        c.repository_answers(normalise_url(url), "webhook")  # a backoff from an outage ends, its apps compare

    # ------------------------------------------------------------------ matching

    def _sources_by_repository(self) -> dict[str, list[_Match]]:
        """Every app source by repository identity (one pass over the apps the informer holds)."""
        index: dict[str, list[_Match]] = {}
        for name, obj in self.controller.apps.objects.items():
            for source in git_sources(obj):
                match = _Match(name, source.position, source.url, source.revision)
                index.setdefault(repository_identity(source.url), []).append(match)
        return index

    async def _default_branch(self, url: str) -> str | None:
        """The default branch from the remembered listing, else one ``ls-remote``."""
        try:
            refs = await self.controller.git.repository(url, self.controller.repo_credentials.lookup(url)).ls_remote()
        except TetherError as exc:
            log.info("webhook: cannot resolve the default branch", repo=url, error=str(exc))
            return None
        return refs.head_ref.removeprefix("refs/heads/") if refs.head_ref else None

    # ------------------------------------------------------------------ deciding

    async def _decide(
        self,
        name: str,
        entries: list[tuple[_Match, list[Push]]],
        diffs: dict[tuple[str, str, str], asyncio.Task[frozenset[str] | None]],
    ) -> str | None:
        """REFRESH, MOVE or None (nothing moved); counted here, queued by the caller."""
        c = self.controller
        memory = c.memory.get(name)
        obj = c.apps.get(name)
        if obj is None:
            return None
        if memory is None or memory.desired is None or not memory.revisions or memory.operating:
            return self._refresh()
        if memory.comparison_error is not None or c.requires_signatures(obj):
            # Its last comparison failed at a later commit than the render it holds: a push back to that
            # render's files (a revert) changes none of them, yet must compare again to clear the error.
            # A project with signatureKeys verifies every commit it moves to, whatever the files.
            return self._refresh()
        try:
            app = Application.from_object(obj)
        except TetherError:
            return self._refresh()  # the reconcile says what is wrong with it
        sources = app.spec.sources_list()
        # A move a batch decided and no reconcile made yet counts as made: deciding it again is not a new move.
        pending = memory.moved[1] if memory.moved is not None and memory.moved[0] == memory.revisions else None
        before = tuple(memory.revisions)  # what the app's desired objects were rendered at
        current = pending or before
        after = list(current)
        changed_input = False
        for match, pushes in entries:
            if match.index >= len(sources) or match.index >= len(before):
                changed_input = True
                continue
            try:
                new = await c.git.resolve(match.url, match.revision, c.repo_credentials.lookup(match.url))
            except TetherError:
                changed_input = True  # the refresh shows the error
                continue
            if new == current[match.index]:
                continue
            after[match.index] = new
            old = before[match.index]  # changed files are counted from what was rendered
            watched = self._watched(app, match.index, memory.inputs)
            if watched is None:
                changed_input = True
                continue
            files = _listed(pushes, old, new)
            if files is None:
                key = (repository_identity(match.url), old, new)
                if key not in diffs:
                    diffs[key] = asyncio.ensure_future(self._diff(match.url, old, new))
                files = await diffs[key]
            if files is None or _touches(files, watched):
                changed_input = True
        if tuple(after) == current:
            return None
        if changed_input:
            return self._refresh()
        # The refs were resolved across awaits: the app may have been reconciled meanwhile. Its pending
        # move then took effect (or was dropped), and no "moved" reconcile is queued for it any more.
        now = tuple(memory.revisions)
        if now != before:
            if now != pending:
                return self._refresh()  # rendered again meanwhile: let a comparison say where it stands
            if tuple(after) == now:
                return None  # the pending move applied already went where this push goes
            before = now  # the pending move was applied: move on from there
        scheduled = memory.moved is not None and memory.moved[0] == before  # its "moved" reconcile has not run yet
        memory.moved = (before, tuple(after))
        self.stats.moved += 1
        return None if scheduled else MOVE

    def _refresh(self) -> str:
        self.stats.refreshed += 1
        return REFRESH

    def _watched(
        self, app: Application, index: int, inputs: tuple[tuple[str, ...] | None, ...]
    ) -> tuple[str, ...] | None:
        """The repository paths whose change concerns source ``index``; None when unknown (refresh it)."""
        annotated = app.annotation(PATHS_ANNOTATION)
        if annotated is not None:
            base = app.spec.sources_list()[index].path.strip("/")
            paths = []
            for part in annotated.split(";"):
                part = part.strip()
                if not part:
                    continue
                joined = part.lstrip("/") if part.startswith("/") else f"{base}/{part}" if base else part
                paths.append(_clean(joined))
            return tuple(paths)
        if index >= len(inputs):
            return None
        return inputs[index]

    async def _diff(self, url: str, old: str, new: str) -> frozenset[str] | None:
        c = self.controller
        self.stats.diffs += 1
        try:
            return frozenset(await c.git.changed_paths(url, old, new, c.repo_credentials.lookup(url)))
        except TetherError as exc:
            log.info("webhook: cannot list the changed files; refreshing", repo=url, error=str(exc))
            return None


def _listed(pushes: Sequence[Push], old: str, new: str) -> frozenset[str] | None:
    """The files changed from ``old`` to ``new`` by the payloads alone, when they form one unbroken chain."""
    by_before = {p.before: p for p in pushes if p.before}
    files: set[str] = set()
    at = old
    for _ in range(len(pushes)):
        push = by_before.get(at)
        if push is None or push.changed_files is None or push.forced:
            return None
        files.update(push.changed_files)
        at = push.after or ""
        if at == new:
            return frozenset(files)
    return None


def _clean(path: str) -> str:
    """A repository path in one spelling: no ``./``, ``//`` or trailing ``/``; the root is ""."""
    clean = posixpath.normpath(path).lstrip("/")
    return "" if clean == "." else clean


def _touches(files: frozenset[str], watched: Sequence[str]) -> bool:
    """Whether any changed file is a watched path or lies under one (``.`` or "" is the whole repository)."""
    prefixes = [_clean(p) for p in watched]
    if any(p == "" for p in prefixes):
        return bool(files)
    return any(f == p or f.startswith(p + "/") for f in files for p in prefixes)
