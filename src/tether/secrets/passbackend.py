"""Read entries from a ``pass`` password store by running ``pass show``.

The store is found the way ``pass`` finds it (``PASSWORD_STORE_DIR``, default
``~/.password-store``; ``GNUPGHOME``, default ``~/.gnupg``) unless given explicitly. Entry
paths are checked against the store on disk *before* ``pass`` runs: ``pass show <dir>``
prints a listing and exits 0, and a path must never climb out of the store through ``..``
or a symlink. Decryption needs a key without a passphrase or an already unlocked gpg-agent:
there is no one to type a passphrase. When decryption fails, gpg says "No secret key" for a
missing key and a locked one alike; Tether asks gpg and gpg-agent which it was and says so.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from tether.errors import ProcessError, Reason, TetherError
from tether.proc import Completed, base_env, run
from tether.secrets.placeholders import check_entry_path

DEFAULT_TIMEOUT = 30.0
MAX_ENTRY_BYTES = 1024 * 1024
DIAGNOSE_TIMEOUT = 10.0
HIDDEN_RECIPIENT = "0000000000000000"


class EntryNotFound(TetherError):
    """No such entry in the store (the message names the entry path only)."""

    reason = Reason.SECRET_MISSING


class LockedKey(TetherError):
    """The entry's GnuPG key exists but needs a passphrase that gpg-agent does not hold."""

    reason = Reason.SECRET_MISSING


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
        entry = self.entry_file(path)
        try:
            done = await run(
                ["pass", "show", "--", path],
                env=self._env(),
                timeout=self.timeout,
                max_output=MAX_ENTRY_BYTES,
                what=f"pass show {path}",
            )
        except ProcessError as exc:
            raise await self._decryption_problem(path, entry) or TetherError(
                f"cannot read secret entry {path!r}: {exc}"
            ) from None
        return done.stdout.decode("utf-8", errors="replace")

    async def _decryption_problem(self, path: str, entry: Path) -> TetherError | None:
        """Why ``entry`` cannot be decrypted, when its key is locked or absent; None when it is neither.

        gpg reports a key whose passphrase cannot be asked for (no terminal, no pinentry) as
        "No secret key", exactly as a missing key. The recipients come from the entry's
        header (no decryption), each one's keygrip from ``--list-secret-keys``, and whether
        that key is passphrase-protected and not cached from gpg-agent's ``KEYINFO``.
        """
        try:
            recipients = await self._recipients(entry)
            grips = await self._keygrips(recipients) if recipients else {}
            locked = [
                grips[key_id][0] for key_id in recipients if key_id in grips and await self._locked(grips[key_id][1])
            ]
        except ProcessError:
            return None
        if locked:
            return LockedKey(
                f"cannot read secret entry {path!r}: the GnuPG key {locked[0]} it is encrypted for needs a "
                "passphrase, and gpg-agent has none cached. Tether runs without a terminal and cannot ask for "
                "one: preset the passphrase in gpg-agent (gpg-preset-passphrase, with allow-preset-passphrase "
                "in gpg-agent.conf) or encrypt the store for a key without a passphrase"
            )
        if recipients and not grips:
            return TetherError(
                f"cannot read secret entry {path!r}: it is encrypted for GnuPG key(s) {', '.join(recipients)}, "
                f"and {self.gnupg_home} holds no secret key for any of them"
            )
        return None

    async def _recipients(self, entry: Path) -> list[str]:
        """The long key ids ``entry`` is encrypted for, read from its header (``--list-only`` decrypts nothing)."""
        done = await self._gpg(["--list-only", "--status-fd", "1", "--decrypt", "--", str(entry)], check=False)
        ids = [line.split()[2] for line in done.text.splitlines() if line.startswith("[GNUPG:] ENC_TO ")]
        return [key_id.upper() for key_id in ids if key_id != HIDDEN_RECIPIENT]

    async def _keygrips(self, key_ids: list[str]) -> dict[str, tuple[str, str]]:
        """For each key id with a secret key here: (fingerprint of its primary key, keygrip of that (sub)key)."""
        done = await self._gpg(["--with-colons", "--with-keygrip", "--list-secret-keys", "--", *key_ids], check=False)
        found: dict[str, tuple[str, str]] = {}
        primary, current = "", ""
        for line in done.text.splitlines():
            fields = line.split(":")
            if fields[0] in ("sec", "ssb") and len(fields) > 4:
                current = fields[4].upper()
                primary = "" if fields[0] == "sec" else primary
            elif fields[0] == "fpr" and len(fields) > 9 and not primary:
                primary = fields[9]
            elif fields[0] == "grp" and len(fields) > 9 and current in key_ids:
                found[current] = (primary, fields[9])
        return found

    async def _locked(self, keygrip: str) -> bool:
        """Whether gpg-agent says the key is passphrase-protected (P) and its passphrase is not cached."""
        done = await run(
            ["gpg-connect-agent", f"KEYINFO {keygrip}", "/bye"],
            env=self._env(),
            timeout=DIAGNOSE_TIMEOUT,
            check=False,
            what="gpg-connect-agent KEYINFO",
        )
        for line in done.text.splitlines():
            fields = line.split()
            if fields[:3] == ["S", "KEYINFO", keygrip] and len(fields) > 7:
                return fields[7] == "P" and fields[6] != "1"
        return False

    async def _gpg(self, args: list[str], *, check: bool) -> Completed:
        return await run(
            ["gpg", "--batch", "--no-tty", *args],
            env=self._env(),
            timeout=DIAGNOSE_TIMEOUT,
            check=check,
            what="gpg (diagnosing pass show)",
        )

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
