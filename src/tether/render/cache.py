"""The render cache: an app is rendered again only when something it read has changed.

Key. A render reads a known set of repository paths: the app path, plus whatever else
the renderer followed (kustomize bases, components and patch files elsewhere in the repo,
Helm value files, Jsonnet imports, symlink targets). The key of a render at a commit is

    sha256(scope, [(path, git object id of path at the commit) for each input path])

where the *scope* is everything else the output depends on: the repository, the app path,
the render options (canonical JSON of the source spec without repoURL/targetRevision,
plus app name and destination namespace) and the tool versions.

Index. Per scope the cache remembers the input paths of the last render. For a new
commit the caller only asks git for the object ids of those paths — no checkout — and if
an entry exists under the resulting key it is served as is. If the commit did change an
input, the key is new: the app is checked out and rendered, and the input list recorded
again (a changed kustomization may now read other paths; since the kustomization itself
is an input, that change always misses first). A missing path counts too (id None), so
adding an ignored-if-missing values file invalidates.

Storage. One file per entry under ``<cache_dir>/entries/<key>.json``: a metadata line
(scope, inputs, type) then the objects, written to a temporary file and renamed. The
index and LRU order are rebuilt from those files at start (by modification time, which a
hit refreshes). Bounded by entry count and total bytes, least recently used first out.
Entries hold the placeholder form only — renders happen before secrets are resolved —
and every caller gets its own copy of the objects.

Concurrency. One ``asyncio.Lock`` guards the in-memory index and LRU; callers asking for
the same scope at the same commit share one lookup-or-render (single flight).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.model.source import ApplicationSource, SourceType
from tether.render.engine import Rendered
from tether.resource import json_copy

MiB = 1024 * 1024
DEFAULT_MAX_ENTRIES = 1000
DEFAULT_MAX_BYTES = 512 * MiB
_FORMAT = 1

TreeIds = Callable[[Sequence[str]], Awaitable[Mapping[str, str | None]]]
"""Given repository paths, their git object ids at the commit being rendered (None if absent)."""


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class CacheScope:
    """Everything a render depends on except the repository content: one index entry."""

    repo: str
    path: str
    options: str
    tools: str

    @classmethod
    def for_app(
        cls, repo: str, app: str, source: ApplicationSource, namespace: str | None, tools: Mapping[str, str]
    ) -> CacheScope:
        """``repo`` should be normalised (no credentials); ``tools`` are the tool versions."""
        options = {"app": app, "namespace": namespace, "source": json.loads(source.render_options())}
        return cls(
            repo=repo,
            path=source.path,
            options=json.dumps(options, sort_keys=True, separators=(",", ":")),
            tools=json.dumps(dict(tools), sort_keys=True, separators=(",", ":")),
        )

    @property
    def digest(self) -> str:
        return _digest([self.repo, self.path, self.options, self.tools])

    def key(self, tree_ids: Mapping[str, str | None]) -> str:
        return _digest([self.digest, sorted(tree_ids.items())])


@dataclass
class RenderStats:
    """Counters since start: renders actually performed and renders served from the cache."""

    renders: int = 0
    hits: int = 0


@dataclass(frozen=True)
class CachedRender:
    """A render result and whether it came from the cache."""

    objects: list[dict[str, Any]]
    source_type: SourceType
    inputs: tuple[str, ...]
    key: str
    hit: bool
    files: tuple[str, ...] = ()  # beside each object, the file it came from (Rendered.files)


class RenderCache:
    """Persistent, bounded, concurrency-safe cache of render results (placeholder form only)."""

    def __init__(
        self, cache_dir: Path, *, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.entries_dir = self.cache_dir / "entries"
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.stats = RenderStats()
        self._lru: OrderedDict[str, int] = OrderedDict()  # key -> bytes, oldest first
        self._bytes = 0
        self._index: OrderedDict[str, tuple[str, ...]] = OrderedDict()  # scope digest -> inputs
        self._lock = asyncio.Lock()
        self._flights: dict[tuple[str, str], asyncio.Future[CachedRender]] = {}
        self._load()

    def __len__(self) -> int:
        return len(self._lru)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    async def get_or_render(
        self,
        scope: CacheScope,
        revision: str,
        tree_ids: TreeIds,
        render: Callable[[], Awaitable[Rendered]],
        *,
        refresh: bool = False,
    ) -> CachedRender:
        """The render of ``scope`` at commit ``revision``: from the cache if its inputs are unchanged.

        ``render`` is called (checking out and rendering) only on a miss, or always with ``refresh``
        (a hard refresh), whose result replaces the entry; ``tree_ids`` is asked for object ids of
        the input paths at ``revision``.
        """
        flight = (scope.digest, revision + (" refresh" if refresh else ""))
        future = self._flights.get(flight)
        if future is None:
            future = asyncio.ensure_future(self._lookup_or_render(scope, tree_ids, render, refresh=refresh))
            self._flights[flight] = future
            future.add_done_callback(lambda done: self._land(flight, done))
        result = await asyncio.shield(future)
        return CachedRender(
            objects=json_copy(result.objects),
            source_type=result.source_type,
            inputs=result.inputs,
            key=result.key,
            hit=result.hit,
            files=result.files,
        )

    def _land(self, flight: tuple[str, str], done: asyncio.Future[CachedRender]) -> None:
        if self._flights.get(flight) is done:
            del self._flights[flight]
        if not done.cancelled():
            done.exception()  # retrieved so a failure nobody awaits is not reported as lost

    async def _lookup_or_render(
        self, scope: CacheScope, tree_ids: TreeIds, render: Callable[[], Awaitable[Rendered]], *, refresh: bool
    ) -> CachedRender:
        inputs = None if refresh else self._index.get(scope.digest)
        if inputs is not None:
            key = scope.key(await tree_ids(inputs))
            cached = await self._read(key)
            if cached is not None:
                self.stats.hits += 1
                if scope.digest in self._index:
                    self._index.move_to_end(scope.digest)
                return cached
        rendered = await render()
        key = scope.key(await tree_ids(rendered.inputs))
        await self._store(key, scope, rendered)
        self.stats.renders += 1
        return CachedRender(
            rendered.objects, rendered.source_type, rendered.inputs, key, hit=False, files=rendered.files
        )

    async def _read(self, key: str) -> CachedRender | None:
        async with self._lock:
            if key not in self._lru:
                return None
            self._lru.move_to_end(key)
        try:
            meta, objects = await asyncio.to_thread(self._read_entry, self._entry_path(key))
        except (OSError, ValueError):
            async with self._lock:
                self._forget(key)
            return None
        files = tuple(str(f) for f in meta.get("files") or ())  # absent in entries older than the field
        return CachedRender(objects, SourceType(meta["source_type"]), tuple(meta["inputs"]), key, hit=True, files=files)

    async def _store(self, key: str, scope: CacheScope, rendered: Rendered) -> None:
        meta = {
            "format": _FORMAT,
            "scope": scope.digest,
            "inputs": list(rendered.inputs),
            "source_type": rendered.source_type.value,
            "files": list(rendered.files),
        }
        data = (json.dumps(meta) + "\n" + json.dumps(rendered.objects, separators=(",", ":")) + "\n").encode()
        async with self._lock:
            self._remember_inputs(scope.digest, rendered.inputs)
            if len(data) > self.max_bytes:
                return
            await asyncio.to_thread(self._write_atomically, self._entry_path(key), data)
            if key in self._lru:
                self._bytes -= self._lru.pop(key)
            self._lru[key] = len(data)
            self._bytes += len(data)
            self._evict()

    def _remember_inputs(self, scope: str, inputs: tuple[str, ...]) -> None:
        self._index[scope] = inputs
        self._index.move_to_end(scope)
        while len(self._index) > max(self.max_entries, 1):
            self._index.popitem(last=False)

    def _evict(self) -> None:
        while self._lru and (len(self._lru) > self.max_entries or self._bytes > self.max_bytes):
            key, _ = next(iter(self._lru.items()))
            self._forget(key)

    def _forget(self, key: str) -> None:
        size = self._lru.pop(key, None)
        if size is not None:
            self._bytes -= size
        try:
            self._entry_path(key).unlink()
        except FileNotFoundError:
            pass

    def _entry_path(self, key: str) -> Path:
        return self.entries_dir / f"{key}.json"

    def _read_entry(self, path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        with path.open("rb") as handle:
            meta = json.loads(handle.readline())
            objects = json.loads(handle.read())
        os.utime(path)  # the LRU order survives a restart
        return meta, objects

    def _write_atomically(self, path: Path, data: bytes) -> None:
        """Readers see a whole entry or none. No fsync: an entry a crash cut short fails to parse and is
        rendered again, so the disk's flush is not worth a thread's wait on every render."""
        fd, temporary = tempfile.mkstemp(prefix=".tmp-", dir=self.entries_dir)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _load(self) -> None:
        """Rebuild the index and LRU order from the entry files; drop leftovers and unreadable files."""
        self.entries_dir.mkdir(parents=True, exist_ok=True)
        for directory in (self.cache_dir, self.entries_dir):
            directory.chmod(0o700)
        found: list[tuple[float, str, int, dict[str, Any]]] = []
        for path in self.entries_dir.iterdir():
            if path.name.startswith(".tmp-") or path.suffix != ".json":
                path.unlink(missing_ok=True)
                continue
            try:
                with path.open("rb") as handle:
                    meta = json.loads(handle.readline())
                if meta.get("format") != _FORMAT:
                    raise ValueError("old format")
                tuple(meta["inputs"]), str(meta["scope"]), SourceType(meta["source_type"])
                stat = path.stat()
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                path.unlink(missing_ok=True)
                continue
            found.append((stat.st_mtime, path.stem, stat.st_size, meta))
        for _, key, size, meta in sorted(found):
            self._lru[key] = size
            self._bytes += size
            self._remember_inputs(meta["scope"], tuple(meta["inputs"]))
        self._evict()
