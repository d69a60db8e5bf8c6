"""The git cache: resolve revisions, fetch single commits into one bare repo per URL, materialise them.

Every git call goes through ``tether.proc.run`` with a minimal environment (no user or
system config, no prompts, LFS smudging off, a private HOME), a timeout and an output
cap. Fetches are shallow and by commit id (``git fetch --depth 1 <url> <sha>``), which
needs the server to allow unadvertised commit ids in ``want`` lines: GitHub, GitLab,
Bitbucket and Gitea do, and the test server enables ``uploadpack.allowAnySHA1InWant``.

Within one process a repository has one fetch at a time (an ``asyncio.Lock`` per URL),
and callers asking for the same commit share one fetch. A cache directory belongs to one
process. The cache is shared by every caller of a URL: once a commit is fetched with
someone's credentials, other callers of that URL can read it — authorisation to use a
repository is decided before reaching here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path, PurePosixPath
from typing import Any

import structlog

from tether.errors import ProcessError, Reason, TetherError
from tether.proc import Completed, base_env, run
from tether.source.credentials import Credentials, auth_env, write_askpass
from tether.source.revisions import FULL_SHA, NeedsFetch, RemoteRefs, RevisionNotFound, parse_ls_remote, pick
from tether.source.signatures import Verdict, parse_status
from tether.source.urls import cache_key, check_url, is_ssh_url, normalise_url, redact_url, split_userinfo

log = structlog.get_logger(__name__)

GiB = 1024**3
MiB = 1024**2
DEFAULT_MAX_REPO_BYTES = 2 * GiB
DEFAULT_MAX_CHECKOUT_BYTES = 512 * MiB
DEFAULT_PROTOCOLS = ("https", "http", "ssh", "git", "file")
MASK = "********"

# Attributes in info/attributes win over the repository's .gitattributes: checkouts are the
# committed bytes, with nothing dropped (export-ignore), rewritten (export-subst, ident,
# eol conversion) or filtered (LFS pointers stay pointers).
_NEUTRAL_ATTRIBUTES = "* -export-ignore -export-subst -ident -text -filter\n"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class GitError(TetherError):
    """A git operation failed; the message names the repository (redacted), never a credential."""

    reason = Reason.SOURCE_FAILED
    retryable = True  # a network or server failure; the next poll may succeed
    # The repository (normalised URL) when talking to it failed: an outage or refusal of the whole
    # repository, which every app on it would meet too, not a revision or path of one app's.
    repository: str | None = None


TREE_ID_MEMO = 65_536
LISTED_COMMITS = 8  # commits whose whole listing (path -> object id) is kept
LISTED_PATHS = 50_000  # a commit with more entries is asked path by path  # remembered (repository, commit, path) -> object id answers


class GitCache:
    """Bare caches of remote repositories under ``cache_dir``, one per normalised URL.

    ``timeout`` bounds every git call (seconds). A fetch that leaves a repository cache
    above ``max_repo_bytes`` is refused and the cache dropped; a checkout whose files add
    up to more than ``max_checkout_bytes`` is refused before anything is written.
    """

    def __init__(
        self,
        cache_dir: Path,
        *,
        timeout: float = 60.0,
        max_repo_bytes: int = DEFAULT_MAX_REPO_BYTES,
        max_checkout_bytes: int = DEFAULT_MAX_CHECKOUT_BYTES,
        allowed_protocols: Sequence[str] = DEFAULT_PROTOCOLS,
        refs_max_age: float = 0.0,
        kept_checkouts: int = 0,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.kept_checkouts = kept_checkouts
        self.refs_max_age = refs_max_age
        self.timeout = timeout
        self.max_repo_bytes = max_repo_bytes
        self.max_checkout_bytes = max_checkout_bytes
        self.allowed_protocols = tuple(allowed_protocols)
        self.fetch_count = 0  # git fetch processes started; lets callers and tests see sharing work
        # repository (normalised URL) -> when a git call over the network last succeeded (monotonic):
        # tells the controller a repository it backed off answers again, whoever asked it
        self.answered: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._askpass: Path | None = None
        # repository -> (when listed, its refs), and the listings under way: one ls-remote per repository
        # per ``refs_max_age`` seconds (the controller's poll interval), shared by every app on it
        self._refs: dict[str, tuple[float, RemoteRefs]] = {}
        self._listing: dict[str, asyncio.Future[RemoteRefs]] = {}
        # (repository, commit, path) -> object id: immutable facts, so a bounded memo saves a git call per input
        self._tree_ids: OrderedDict[tuple[str, str, str], str | None] = OrderedDict()
        self._listings: OrderedDict[tuple[str, str], dict[str, str] | None] = OrderedDict()
        self._listing_flights: dict[tuple[str, str], asyncio.Future[dict[str, str] | None]] = {}
        self._known: set[tuple[str, str]] = set()  # (repository, commit) known to be in the cache
        self._checkouts: OrderedDict[tuple[str, str], _SharedTree] = OrderedDict()  # oldest first
        self._submodules: dict[Path, dict[str, str]] = {}  # materialised tree -> its gitlinks (path -> commit)

    @property
    def repos_dir(self) -> Path:
        return self.cache_dir / "repos"

    @property
    def scratch_dir(self) -> Path:
        return self.cache_dir / "tmp"

    def repository(self, url: str, credentials: Credentials | None = None) -> GitRepository:
        """A handle on one remote; userinfo in ``url`` becomes credentials and leaves the URL."""
        return GitRepository(self, url, credentials)

    async def resolve(self, url: str, revision: str, credentials: Credentials | None = None) -> str:
        """The commit id ``revision`` names on the remote (see ``tether.source.revisions``)."""
        return await self.repository(url, credentials).resolve(revision)

    async def fetch(self, url: str, sha: str, credentials: Credentials | None = None) -> None:
        """Make commit ``sha`` (a full id) available locally, fetching only it when missing."""
        await self.repository(url, credentials).fetch(sha)

    def checkout(self, url: str, sha: str, credentials: Credentials | None = None) -> AbstractAsyncContextManager[Path]:
        """A read-only temporary directory holding commit ``sha``'s files, removed on exit."""
        return self.repository(url, credentials).checkout(sha)

    async def tree_id(self, url: str, sha: str, path: str, credentials: Credentials | None = None) -> str | None:
        """Object id of ``path`` in commit ``sha`` ("" or "." is the root tree); None if absent."""
        return await self.repository(url, credentials).tree_id(sha, path)

    async def verify(self, url: str, sha: str, keyring: Path, credentials: Credentials | None = None) -> Verdict:
        """GnuPG's verdict on commit ``sha``'s signature, checked against the keyring at ``keyring`` only."""
        return await self.repository(url, credentials).verify(sha, keyring)

    def submodules(self, tree: Path) -> Mapping[str, str]:
        """The git submodules of a tree ``checkout`` gave: path -> the commit the superproject records.

        ``git archive`` leaves each one an empty directory, and Tether does not fetch them, so a render
        that reads one must fail rather than render without its files (``tether.render.engine``).
        """
        return self._submodules.get(tree, {})

    async def _trim_checkouts(self) -> None:
        """Remove materialised trees beyond the newest ``kept_checkouts`` that nobody is using."""
        idle = [key for key, shared in self._checkouts.items() if shared.users == 0]
        for key in idle[: max(0, len(idle) - self.kept_checkouts)]:
            shared = self._checkouts.pop(key)
            if shared.ready.done() and shared.ready.exception() is None:
                self._submodules.pop(shared.ready.result(), None)
                await asyncio.to_thread(_remove_tree, shared.ready.result().parent)

    async def close(self) -> None:
        """Remove every materialised tree (a process that stops leaves no checkout behind)."""
        for shared in list(self._checkouts.values()):
            if shared.ready.done() and shared.ready.exception() is None:
                await asyncio.to_thread(_remove_tree, shared.ready.result().parent)
        self._checkouts.clear()
        self._submodules.clear()

    async def changed_paths(
        self, url: str, before: str, after: str, credentials: Credentials | None = None
    ) -> list[str]:
        """Paths that differ between two commits (``git diff --name-only``), fetching either when missing."""
        return await self.repository(url, credentials).changed_paths(before, after)

    def forget_refs(self, url: str) -> None:
        """Drop the remembered listing of ``url``, so the next resolve asks the server (a refresh, a poll)."""
        self._refs.pop(cache_key(url), None)

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def _prepare(self) -> Path:
        """Create the cache layout (private dirs) and the askpass script; the askpass path."""
        if self._askpass is None:
            for directory in (self.cache_dir, self.repos_dir, self.scratch_dir, self.cache_dir / "home"):
                directory.mkdir(parents=True, exist_ok=True)
                directory.chmod(0o700)
            self._askpass = write_askpass(self.scratch_dir)
        return self._askpass

    def _env(self) -> dict[str, str]:
        return base_env(
            {
                "HOME": str(self.cache_dir / "home"),
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_TERMINAL_PROMPT": "0",
                "GIT_LFS_SKIP_SMUDGE": "1",
                "GIT_ALLOW_PROTOCOL": ":".join(self.allowed_protocols),
            }
        )


class _SharedTree:
    """One materialised commit and how many callers are inside its ``checkout`` block."""

    def __init__(self, ready: asyncio.Future[Path]) -> None:
        self.ready = ready
        self.users = 0


class GitRepository:
    """One remote repository seen through a ``GitCache``, with the credentials to reach it."""

    def __init__(self, cache: GitCache, url: str, credentials: Credentials | None = None) -> None:
        check_url(url)
        clean, user, password = split_userinfo(url)
        if credentials is None and (user or password):
            credentials = Credentials(username=user, password=password)
        self.cache = cache
        self.url = clean
        self.credentials = credentials
        self.key = cache_key(clean)
        self.path = cache.repos_dir / self.key

    @property
    def display_url(self) -> str:
        return redact_url(self.url)

    def redact(self, text: str) -> str:
        """``text`` without URL userinfo or any of this repository's credential values."""
        text = redact_url(text)
        for secret in self.credentials.secret_values() if self.credentials else ():
            text = text.replace(secret, MASK)
        return text

    async def ls_remote(self) -> RemoteRefs:
        """Every ref the remote advertises, without fetching anything.

        Callers asking at the same time share one ``git ls-remote``; with the cache's
        ``refs_max_age`` above 0, a listing younger than that is reused.
        """
        cache, loop = self.cache, asyncio.get_running_loop()
        listed = cache._refs.get(self.key)
        if listed is not None and loop.time() - listed[0] < cache.refs_max_age:
            return listed[1]
        future = cache._listing.get(self.key)
        if future is None:
            future = asyncio.ensure_future(self._list_refs())
            cache._listing[self.key] = future
            future.add_done_callback(lambda f: _forget(cache._listing, self.key, f))
        return await asyncio.shield(future)

    async def _list_refs(self) -> RemoteRefs:
        done = await self._git(["ls-remote", "--symref", "--", self.url], what="ls-remote", network=True)
        refs = parse_ls_remote(done.text)
        if self.cache.refs_max_age > 0:
            self.cache._refs[self.key] = (asyncio.get_running_loop().time(), refs)
        return refs

    async def resolve(self, revision: str) -> str:
        """The commit id ``revision`` names; a ``GitError`` naming the repository and revision if none."""
        refs = await self.ls_remote()
        try:
            return pick(refs, revision)
        except NeedsFetch as need:
            return await self._resolve_abbreviated(need.prefix, revision)
        except RevisionNotFound as exc:
            raise GitError(self.redact(f"{self.display_url}: cannot resolve revision {revision!r}: {exc}")) from None

    async def fetch(self, sha: str) -> None:
        """Fetch commit ``sha`` alone (depth 1) unless already cached; concurrent callers share one fetch."""
        sha = self._full_sha(sha)
        inflight = self.cache._inflight
        key = (self.key, sha)
        if key in self.cache._known:
            return
        if key not in inflight and await self._has_commit(sha):
            self.cache._known.add(key)
            return
        future = inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._fetch_locked(sha))
            inflight[key] = future
            future.add_done_callback(lambda f: _forget(inflight, key, f))
        await asyncio.shield(future)
        self.cache._known.add(key)

    async def changed_paths(self, before: str, after: str) -> list[str]:
        """Paths changed from ``before`` to ``after`` (renames as a removal and an addition); trees only, no history."""
        await asyncio.gather(self.fetch(before), self.fetch(after))
        done = await self._git(
            ["diff", "--name-only", "--no-renames", "-z", self._full_sha(before), self._full_sha(after), "--"],
            what="diff",
            cwd=self.path,
        )
        return [name for name in done.stdout.decode("utf-8", "replace").split("\0") if name]

    @contextlib.asynccontextmanager
    async def checkout(self, sha: str) -> AsyncIterator[Path]:
        """Commit ``sha`` materialised read-only; the directory is valid until the block ends.

        Files are the committed bytes (no attribute rewriting, LFS pointers left as is).
        Symlinks that point outside the tree, device files and oversized trees are refused.
        Callers of the same commit at the same time share one materialised tree; with
        ``kept_checkouts`` above 0 (the controller's cache) the newest trees nobody uses are kept
        for the next render, so a monorepo of many apps is extracted once per commit, not once
        per app. ``close`` removes them.
        """
        sha = self._full_sha(sha)
        key = (self.key, sha)
        shared = self.cache._checkouts.get(key)
        if shared is None or (shared.ready.done() and shared.ready.exception() is not None):
            shared = _SharedTree(asyncio.ensure_future(self._materialise(sha)))
            self.cache._checkouts[key] = shared
        shared.users += 1
        self.cache._checkouts.move_to_end(key)
        try:
            tree = await asyncio.shield(shared.ready)
            yield tree
        finally:
            shared.users -= 1
            await self.cache._trim_checkouts()

    async def _materialise(self, sha: str) -> Path:
        await self.fetch(sha)
        total, count, gitlinks = await self._tree_size(sha)
        limit = self.cache.max_checkout_bytes
        if total > limit:
            raise GitError(
                f"{self.display_url}@{sha[:12]}: checkout of {total} bytes in {count} files is above "
                f"the limit of {limit} bytes"
            )
        self.cache._prepare()
        workdir = Path(tempfile.mkdtemp(prefix="checkout-", dir=self.cache.scratch_dir))
        try:
            archive = workdir / "tree.tar"
            tree = workdir / "tree"
            await self._git(["archive", "--format=tar", f"--output={archive}", sha], what="archive", cwd=self.path)
            try:
                await asyncio.to_thread(_extract, archive, tree)
            except (tarfile.TarError, OSError) as exc:
                raise GitError(f"{self.display_url}@{sha[:12]}: refusing to check out: {exc}") from None
            archive.unlink()
            await asyncio.to_thread(_make_read_only, tree)
            if gitlinks:
                self.cache._submodules[tree] = gitlinks
            return tree
        except BaseException:
            await asyncio.to_thread(_remove_tree, workdir)
            raise

    async def verify(self, sha: str, keyring: Path) -> Verdict:
        """``git verify-commit --raw`` of ``sha`` (fetched first when missing), read by ``parse_status``."""
        await self.fetch(sha)
        done = await self._git(
            ["verify-commit", "--raw", self._full_sha(sha)],
            what="verify-commit",
            cwd=self.path,
            check=False,
            extra_env={"GNUPGHOME": str(keyring)},
        )
        return parse_status(done.stderr.decode("utf-8", "replace"))

    async def tree_id(self, sha: str, path: str) -> str | None:
        """Object id at ``path`` in commit ``sha`` (a tree for directories); None when it does not exist.

        It changes exactly when something under ``path`` changes, so renders can be cached by it.
        """
        sha = self._full_sha(sha)
        clean = path.strip()
        if _CONTROL.search(clean) or ".." in PurePosixPath(clean).parts:
            raise GitError(f"{self.display_url}: invalid path {path!r}")
        clean = clean.strip("/")
        while clean.startswith("./"):
            clean = clean[2:].lstrip("/")
        memo, memo_key = self.cache._tree_ids, (self.key, sha, clean)
        if memo_key in memo:
            memo.move_to_end(memo_key)
            return memo[memo_key]
        listing = await self._listing(sha)
        if listing is not None:
            return listing.get("" if clean in ("", ".") else clean)
        await self.fetch(sha)
        spec = f"{sha}^{{tree}}" if clean in ("", ".") else f"{sha}:{clean}"
        done = await self._git(["rev-parse", "--verify", "--quiet", spec], what="rev-parse", cwd=self.path, check=False)
        found = done.text.strip() if done.returncode == 0 else None
        memo[memo_key] = found
        while len(memo) > TREE_ID_MEMO:
            memo.popitem(last=False)
        return found

    async def _listing(self, sha: str) -> dict[str, str] | None:
        """Every path of commit ``sha`` with its object id, from one ``git ls-tree`` (shared by the apps of a
        monorepo, which would otherwise ask once each); None for a tree too large to keep listed."""
        listings, key = self.cache._listings, (self.key, sha)
        if key in listings:
            listings.move_to_end(key)
            return listings[key]
        future = self.cache._listing_flights.get(key)
        if future is None:
            future = asyncio.ensure_future(self._list_tree(sha))
            self.cache._listing_flights[key] = future
            future.add_done_callback(lambda f: _forget(self.cache._listing_flights, key, f))
        listing = await asyncio.shield(future)
        listings[key] = listing
        while len(listings) > LISTED_COMMITS:
            listings.popitem(last=False)
        return listing

    async def _list_tree(self, sha: str) -> dict[str, str] | None:
        await self.fetch(sha)
        done = await self._git(["ls-tree", "-r", "-t", "-z", "--full-tree", sha], what="ls-tree", cwd=self.path)
        entries = [e for e in done.stdout.split(b"\0") if e]
        if len(entries) > LISTED_PATHS:
            return None
        root = await self._git(["rev-parse", "--verify", "--quiet", f"{sha}^{{tree}}"], what="rev-parse", cwd=self.path)
        listing = {"": root.text.strip()}
        for entry in entries:
            head, _, path = entry.partition(b"\t")
            fields = head.split()
            if len(fields) >= 3:
                listing[path.decode("utf-8", "surrogateescape")] = fields[2].decode()
        return listing

    async def _fetch_locked(self, sha: str) -> None:
        async with self.cache._lock(self.key):
            await self._ensure_repo()
            if await self._has_commit(sha):
                return
            self.cache.fetch_count += 1
            log.info("git fetch", repo=self.display_url, commit=sha)
            try:
                await self._git(
                    [
                        "fetch",
                        "--quiet",
                        "--no-tags",
                        "--no-write-fetch-head",
                        "--depth",
                        "1",
                        "--",
                        self.url,
                        f"+{sha}:refs/tether/commits/{sha}",
                    ],
                    what="fetch",
                    cwd=self.path,
                    network=True,
                )
            except GitError as exc:
                raise GitError(f"commit {sha} could not be fetched: {exc}") from None
            await self._check_repo_size(f"fetching {sha[:12]}")
            if not await self._has_commit(sha):
                raise GitError(f"{self.display_url}: {sha} is not a commit")

    async def _resolve_abbreviated(self, prefix: str, revision: str) -> str:
        """An abbreviated id no ref tip starts with: look in the cache, else fetch all branches and tags."""
        async with self.cache._lock(self.key):
            await self._ensure_repo()
            found = await self._rev_parse_commit(prefix, revision)
            if found:
                return found
            shallow = await self._git(["rev-parse", "--is-shallow-repository"], what="rev-parse", cwd=self.path)
            args = ["fetch", "--quiet", "--no-write-fetch-head", "--no-tags"]
            if shallow.text.strip() == "true":
                args.append("--unshallow")
            args += ["--", self.url, "+refs/heads/*:refs/tether/heads/*", "+refs/tags/*:refs/tether/tags/*"]
            self.cache.fetch_count += 1
            log.info("git fetch all refs for an abbreviated commit", repo=self.display_url, prefix=prefix)
            await self._git(args, what="fetch", cwd=self.path, network=True)
            await self._check_repo_size("fetching all branches and tags")
            found = await self._rev_parse_commit(prefix, revision)
            if found:
                return found
            raise GitError(
                f"{self.display_url}: cannot resolve revision {revision!r}: no branch, tag or commit named {revision!r}"
            )

    async def _rev_parse_commit(self, prefix: str, revision: str) -> str | None:
        done = await self._git(
            ["rev-parse", "--verify", f"{prefix}^{{commit}}"], what="rev-parse", cwd=self.path, check=False
        )
        if done.returncode == 0:
            return done.text.strip()
        if "ambiguous" in done.stderr.decode("utf-8", "replace"):
            raise GitError(
                f"{self.display_url}: cannot resolve revision {revision!r}: abbreviated commit is ambiguous; "
                "give more digits"
            )
        return None

    async def _ensure_repo(self) -> None:
        """Create the bare cache repository atomically (init elsewhere, then rename into place)."""
        self.cache._prepare()
        if (self.path / "HEAD").exists():
            return
        staging = Path(tempfile.mkdtemp(prefix="init-", dir=self.cache.scratch_dir))
        try:
            await self._git(["init", "--quiet", "--bare", str(staging)], what="init")
            for key, value in (("gc.auto", "0"), ("core.logAllRefUpdates", "false"), ("remote.origin.url", self.url)):
                await self._git(["config", key, value], what="config", cwd=staging)
            (staging / "info").mkdir(exist_ok=True)
            (staging / "info" / "attributes").write_text(_NEUTRAL_ATTRIBUTES)
            staging.rename(self.path)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    async def _has_commit(self, sha: str) -> bool:
        if not (self.path / "HEAD").exists():
            return False
        done = await self._git(["cat-file", "-e", f"{sha}^{{commit}}"], what="cat-file", cwd=self.path, check=False)
        return done.returncode == 0

    async def _tree_size(self, sha: str) -> tuple[int, int, dict[str, str]]:
        """(bytes, files, submodules: path -> recorded commit) of commit ``sha``, from one ``ls-tree``."""
        done = await self._git(["ls-tree", "-r", "-l", "-z", "--full-tree", sha], what="ls-tree", cwd=self.path)
        total = count = 0
        gitlinks: dict[str, str] = {}
        for entry in done.stdout.split(b"\0"):
            if not entry:
                continue
            head, _, path = entry.partition(b"\t")
            fields = head.split()
            if len(fields) == 4 and fields[3].isdigit():
                total += int(fields[3])
                count += 1
            elif len(fields) == 4 and fields[1] == b"commit":
                gitlinks[path.decode("utf-8", "surrogateescape")] = fields[2].decode()
        return total, count, gitlinks

    async def _check_repo_size(self, after: str) -> None:
        size = await asyncio.to_thread(_dir_size, self.path)
        limit = self.cache.max_repo_bytes
        if size <= limit:
            return
        trash = Path(tempfile.mkdtemp(prefix="drop-", dir=self.cache.scratch_dir))
        self.path.rename(trash / "repo")
        self.cache._known = {known for known in self.cache._known if known[0] != self.key}
        await asyncio.to_thread(_remove_tree, trash)
        raise GitError(
            f"{self.display_url}: repository cache is {size} bytes after {after}, above the limit of "
            f"{limit} bytes; the cache was dropped"
        )

    def _full_sha(self, sha: str) -> str:
        if not FULL_SHA.fullmatch(sha.strip()):
            raise GitError(f"{self.display_url}: {sha!r} is not a full commit id (resolve the revision first)")
        return sha.strip().lower()

    async def _git(
        self,
        args: list[str],
        *,
        what: str,
        cwd: Path | None = None,
        network: bool = False,
        check: bool = True,
        extra_env: Mapping[str, str] | None = None,
    ) -> Completed:
        """Run git with the minimal environment, the cache's timeout, and redacted errors."""
        askpass = self.cache._prepare()
        env = {**self.cache._env(), **(extra_env or {})}
        label = f"git {what} of {self.display_url}"
        if network and is_ssh_url(self.url) and not (self.credentials and self.credentials.known_hosts):
            # Host keys are always checked; without known_hosts ssh would only say "Host key verification failed".
            raise GitError(f"{label}: SSH needs known_hosts in the credentials (host keys are always checked)")
        try:
            if network:
                with auth_env(self.credentials, askpass=askpass, scratch=self.cache.scratch_dir) as extra:
                    env.update(extra)
                    done = await run(
                        ["git", *args], env=env, cwd=cwd, timeout=self.cache.timeout, check=check, what=label
                    )
                if done.returncode == 0:
                    self.cache.answered[normalise_url(self.url)] = time.monotonic()
                return done
            return await run(["git", *args], env=env, cwd=cwd, timeout=self.cache.timeout, check=check, what=label)
        except ProcessError as exc:
            error = GitError(self.redact(str(exc)))
            if network:
                error.repository = normalise_url(self.url)
            raise error from None


def _forget(inflight: dict[Any, asyncio.Future[Any]], key: object, future: asyncio.Future[Any]) -> None:
    if inflight.get(key) is future:
        del inflight[key]
    if not future.cancelled():
        future.exception()  # retrieved here so a failure seen by no waiter is not reported as lost


def _extract(archive: Path, dest: Path) -> None:
    dest.mkdir()
    with tarfile.open(archive, "r:") as tar:
        tar.extractall(dest, filter="data")


def _make_read_only(root: Path) -> None:
    for current, dirs, files in os.walk(root, topdown=False):
        for name in files:
            path = os.path.join(current, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                os.chmod(path, 0o555 if mode & stat.S_IXUSR else 0o444)
        for name in dirs:
            path = os.path.join(current, name)
            if not os.path.islink(path):
                os.chmod(path, 0o555)
    os.chmod(root, 0o555)


def _remove_tree(root: Path) -> None:
    if not root.exists():
        return
    for current, dirs, _ in os.walk(root):
        os.chmod(current, 0o700)
        for name in dirs:
            path = os.path.join(current, name)
            if not os.path.islink(path):
                os.chmod(path, 0o700)
    shutil.rmtree(root, ignore_errors=True)


def _dir_size(root: Path) -> int:
    total = 0
    for current, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(current, name)).st_size
    return total
