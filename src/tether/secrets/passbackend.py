"""Read entries from a ``pass`` password store by running ``pass show``.

The store is found the way ``pass`` finds it (``PASSWORD_STORE_DIR``, default
``~/.password-store``; ``GNUPGHOME``, default ``~/.gnupg``) unless given explicitly. Entry
paths are checked against the store on disk *before* ``pass`` runs: ``pass show <dir>``
prints a listing and exits 0, and a path must never climb out of the store through ``..``
or a symlink. Decryption needs a key without a passphrase or an already unlocked gpg-agent:
there is no one to type a passphrase.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from tether.errors import ProcessError, TetherError
from tether.proc import base_env, run
from tether.secrets.placeholders import check_entry_path

DEFAULT_TIMEOUT = 30.0
MAX_ENTRY_BYTES = 1024 * 1024


class EntryNotFound(TetherError):
    """No such entry in the store (the message names the entry path only)."""


class SecretBackend(Protocol):
    """Where placeholder values come from: the decrypted text of an entry, and a version of the store."""

    async def show(self, path: str) -> str: ...

    async def store_commit(self) -> str | None: ...


class PassBackend:
    """A ``pass`` store on this machine; every call is a fresh ``pass``/``git`` process with a timeout."""

    def __init__(
        self,
        store_dir: Path | str | None = None,
        gnupg_home: Path | str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        env = os.environ if environ is None else environ
        home = Path(env.get("HOME") or os.path.expanduser("~"))
        self.store_dir = Path(store_dir or env.get("PASSWORD_STORE_DIR") or home / ".password-store")
        self.gnupg_home = Path(gnupg_home or env.get("GNUPGHOME") or home / ".gnupg")
        self.home = home
        self.timeout = timeout

    def entry_file(self, path: str) -> Path:
        """The ``.gpg`` file of entry ``path``; refuses unsafe paths, directories and escapes from the store."""
        check_entry_path(path)
        try:
            root = self.store_dir.resolve(strict=True)
        except OSError:
            raise TetherError(f"password store {self.store_dir} does not exist") from None
        candidate = self.store_dir / f"{path}.gpg"
        try:
            real = candidate.resolve(strict=True)
            mode = real.stat().st_mode
        except OSError:
            if (self.store_dir / path).is_dir():
                raise EntryNotFound(
                    f"secret entry {path!r} is a directory in the password store, not an entry"
                ) from None
            raise EntryNotFound(f"secret entry {path!r} not found in the password store") from None
        if not real.is_relative_to(root):
            raise TetherError(f"secret entry {path!r} resolves outside the password store")
        if not stat.S_ISREG(mode):
            raise EntryNotFound(f"secret entry {path!r} is not a regular file in the password store")
        return real

    async def show(self, path: str) -> str:
        """The decrypted entry (all lines). Raises ``EntryNotFound`` or ``TetherError``; never echoes content."""
        self.entry_file(path)
        try:
            done = await run(
                ["pass", "show", "--", path],
                env=self._env(),
                timeout=self.timeout,
                max_output=MAX_ENTRY_BYTES,
                what=f"pass show {path}",
            )
        except ProcessError as exc:
            raise TetherError(f"cannot read secret entry {path!r}: {exc}") from None
        return done.stdout.decode("utf-8", errors="replace")

    async def store_commit(self) -> str | None:
        """The store's git HEAD, or None when the store is not a git repository (or has no commit)."""
        if not (self.store_dir / ".git").exists():
            return None
        env = base_env({"HOME": str(self.home), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull})
        # safe.directory: the store may belong to another user (a mounted volume); we only read HEAD.
        done = await run(
            [
                "git",
                "-c",
                f"safe.directory={self.store_dir}",
                "-C",
                str(self.store_dir),
                "rev-parse",
                "--verify",
                "--quiet",
                "HEAD",
            ],
            env=env,
            timeout=self.timeout,
            check=False,
            what="git rev-parse (password store)",
        )
        sha = done.text.strip()
        return sha if done.returncode == 0 and sha else None

    def _env(self) -> dict[str, str]:
        return base_env(
            {
                "PASSWORD_STORE_DIR": str(self.store_dir),
                "GNUPGHOME": str(self.gnupg_home),
                "HOME": str(self.home),
            }
        )
