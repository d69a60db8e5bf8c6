"""Which ``pass`` entries changed: the store is a git repository, so ask git between two commits.

The controller remembers, per app, the entry paths it used and the store commit it read them
at — never the values. When the store's HEAD moves, ``changed_entries`` names the entries that
were added, changed or removed (a rename counts as both names), and only apps that used one
of them re-sync. When the old commit is unknown (none recorded, or the store's history was
rewritten and the commit is gone) there is nothing to compare with: ``None`` tells the caller
to treat every entry as changed.

Only ``<entry>.gpg`` files are entries; ``.gpg-id`` and other files are not (re-encrypting for
new recipients rewrites every ``.gpg`` file, and so shows them all).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator

import structlog

from tether.errors import TetherError
from tether.proc import Completed, base_env, run
from tether.secrets.passbackend import PassBackend

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT = 10.0
MAX_DIFF_BYTES = 16 * 1024 * 1024
_COMMIT = re.compile(r"^[0-9a-fA-F]{7,64}$")
_SUFFIX = ".gpg"


async def changed_entries(
    backend: PassBackend, old_commit: str | None, new_commit: str, *, timeout: float = DEFAULT_TIMEOUT
) -> frozenset[str] | None:
    """Entry paths (``db/password``, no ``.gpg``) added, changed or removed from ``old_commit`` to ``new_commit``.

    None when ``old_commit`` is None, not a commit id, or not in the store (history
    rewritten): every entry must then be taken as changed. Raises ``TetherError`` when
    ``new_commit`` is not a commit of the store or git fails.
    """
    if not isinstance(new_commit, str) or not _COMMIT.match(new_commit):
        raise TetherError(f"password store {backend.store_dir}: {new_commit!r} is not a commit id")
    if old_commit is None or not _COMMIT.match(old_commit):
        return None
    if not await _is_commit(backend, new_commit, timeout):
        raise TetherError(f"password store {backend.store_dir}: commit {new_commit} is not in its git repository")
    if not await _is_commit(backend, old_commit, timeout):
        return None
    done = await _git(
        backend,
        ["diff", "--no-renames", "--no-ext-diff", "--name-only", "-z", old_commit, new_commit, "--"],
        timeout=timeout,
        check=True,
    )
    names = done.stdout.decode("utf-8", errors="surrogateescape").split("\0")
    return frozenset(name[: -len(_SUFFIX)] for name in names if name.endswith(_SUFFIX) and len(name) > len(_SUFFIX))


class StoreWatcher:
    """Polls the store's HEAD every ``interval`` seconds and says which entries each move changed."""

    def __init__(self, backend: PassBackend, interval: float = 5.0) -> None:
        if interval <= 0:
            raise ValueError(f"StoreWatcher: interval must be positive, not {interval:g}s")
        self.backend = backend
        self.interval = interval
        self.commit: str | None = None  # the last commit seen

    async def changes(self) -> AsyncIterator[frozenset[str] | None]:
        """Yield the changed entries (None: all of them) each time the store's commit moves.

        The first call records the current commit without yielding. A git failure or timeout
        is logged and polled again; it never ends the iteration.
        """
        self.commit = await self._head()
        failing = False
        while True:
            await asyncio.sleep(self.interval)
            try:
                head = await self.backend.store_commit()
                if head is None or head == self.commit:
                    failing = False
                    continue
                changed = await changed_entries(self.backend, self.commit, head)
            except TetherError as exc:
                if not failing:
                    log.warning(
                        "cannot read the password store's history; retrying",
                        store=str(self.backend.store_dir),
                        error=str(exc),
                    )
                failing = True
                continue
            failing = False
            self.commit = head
            yield changed

    async def _head(self) -> str | None:
        try:
            return await self.backend.store_commit()
        except TetherError as exc:
            log.warning("cannot read the password store's commit", store=str(self.backend.store_dir), error=str(exc))
            return None


async def _is_commit(backend: PassBackend, commit: str, timeout: float) -> bool:
    done = await _git(backend, ["cat-file", "-e", f"{commit}^{{commit}}"], timeout=timeout, check=False)
    return done.returncode == 0


async def _git(backend: PassBackend, args: list[str], *, timeout: float, check: bool) -> Completed:
    """git in the store, with no user or system config, reading only (safe.directory: a mounted store)."""
    if not (backend.store_dir / ".git").exists():
        raise TetherError(f"password store {backend.store_dir} is not a git repository")
    env = base_env({"HOME": str(backend.home), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull})
    return await run(
        ["git", "-c", f"safe.directory={backend.store_dir}", "-C", str(backend.store_dir), *args],
        env=env,
        timeout=timeout,
        max_output=MAX_DIFF_BYTES,
        check=check,
        what=f"git {args[0]} (password store)",
    )
