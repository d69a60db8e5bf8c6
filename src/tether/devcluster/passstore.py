"""A throwaway ``pass`` store: its own GnuPG home, a passphrase-less key, and git history.

Tests and the demo need a real password store that decrypts without a prompt and records
each change as a git commit (Tether re-syncs apps when the store's commit moves), and that
leaves nothing behind: ``close()`` stops the gpg-agent and deletes the key.

    store = PassStore.create(tmp_path)
    store.insert("db/creds", "s3cret\\nuser: app\\n")
    env = store.env            # PASSWORD_STORE_DIR, GNUPGHOME
    store.commit               # git HEAD of the store
    store.close()
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from tether.errors import TetherError
from tether.proc import base_env, trim

TIMEOUT = 60.0
KEY_NAME = "Tether Test Store"
KEY_EMAIL = "tether-pass@example.invalid"

# ed25519/cv25519 generate instantly; %no-protection leaves the key without a passphrase.
_KEY_PARAMS = f"""%no-protection
Key-Type: EDDSA
Key-Curve: ed25519
Key-Usage: sign
Subkey-Type: ECDH
Subkey-Curve: cv25519
Subkey-Usage: encrypt
Name-Real: {KEY_NAME}
Name-Email: {KEY_EMAIL}
Expire-Date: 0
%commit
"""


def _short_tmp() -> str:
    """A short parent directory: gpg-agent's socket path must fit in a sockaddr_un (108 bytes)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and _writable(shm) else "/tmp"


def _writable(path: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=path):
            return True
    except OSError:
        return False


class PassStore:
    """A ``pass`` password store with a private GnuPG home; build it with ``PassStore.create``."""

    def __init__(self, store_dir: Path, gnupg_home: Path, home: Path, key_id: str) -> None:
        self.store_dir = store_dir
        self.gnupg_home = gnupg_home
        self.key_id = key_id
        self._home = home
        self._closed = False

    @classmethod
    def create(cls, base_dir: Path) -> PassStore:
        """Generate a key, ``pass init`` a store under ``base_dir`` and make it a git repository."""
        for program in ("pass", "gpg", "gpgconf", "git"):
            if shutil.which(program, path=base_env()["PATH"]) is None:
                raise TetherError(f"{program} not found on PATH; install it: apt-get install -y pass gnupg git")
        base_dir = Path(base_dir)
        base_dir.mkdir(parents=True, exist_ok=True)
        gnupg_home = Path(tempfile.mkdtemp(prefix="tg-", dir=_short_tmp()))
        gnupg_home.chmod(0o700)
        home = base_dir / "home"
        home.mkdir(exist_ok=True)
        store = cls(base_dir / "password-store", gnupg_home, home, key_id="")
        try:
            store._run(["gpg", "--batch", "--quiet", "--gen-key"], input=_KEY_PARAMS.encode())
            store.key_id = _fingerprint(store._run(["gpg", "--batch", "--with-colons", "--list-secret-keys"]))
            store._run(["pass", "init", store.key_id])
            store._run(["pass", "git", "init"])
        except BaseException:
            store.close()
            raise
        return store

    @property
    def env(self) -> dict[str, str]:
        """What a ``pass`` client needs to use this store: PASSWORD_STORE_DIR and GNUPGHOME."""
        return {"PASSWORD_STORE_DIR": str(self.store_dir), "GNUPGHOME": str(self.gnupg_home)}

    @property
    def commit(self) -> str:
        """The store's git HEAD: it moves with every insert and remove."""
        return self._run(["git", "-C", str(self.store_dir), "rev-parse", "HEAD"]).strip()

    def insert(self, path: str, content: str) -> None:
        """Encrypt ``content`` (any number of lines, stored verbatim) as entry ``path``; replaces it."""
        self._run(["pass", "insert", "--multiline", "--force", "--", _entry(path)], input=content.encode())

    def show(self, path: str) -> str:
        """The decrypted entry, exactly as stored."""
        return self._run(["pass", "show", "--", _entry(path)])

    def remove(self, path: str) -> None:
        """Delete entry ``path`` (a commit in the store's history)."""
        self._run(["pass", "rm", "--force", "--", _entry(path)])

    def close(self) -> None:
        """Stop this home's gpg agent and delete the key material; the store files stay with base_dir."""
        if self._closed:
            return
        self._closed = True
        try:
            subprocess.run(
                ["gpgconf", "--kill", "all"],
                env=self._env(),
                capture_output=True,
                timeout=TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.gnupg_home, ignore_errors=True)

    def __enter__(self) -> PassStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _env(self) -> dict[str, str]:
        return base_env(
            {
                **self.env,
                "HOME": str(self._home),
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": "/dev/null",
                "GIT_AUTHOR_NAME": KEY_NAME,
                "GIT_AUTHOR_EMAIL": KEY_EMAIL,
                "GIT_COMMITTER_NAME": KEY_NAME,
                "GIT_COMMITTER_EMAIL": KEY_EMAIL,
            }
        )

    def _run(self, argv: list[str], *, input: bytes | None = None, env: Mapping[str, str] | None = None) -> str:
        if self._closed:
            raise TetherError("pass store is closed")
        try:
            done = subprocess.run(
                argv,
                env=dict(env) if env is not None else self._env(),
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                capture_output=True,
                timeout=TIMEOUT,
            )
        except subprocess.TimeoutExpired as exc:
            raise TetherError(f"{argv[0]} {argv[1]}: timed out after {TIMEOUT:g}s") from exc
        if done.returncode != 0:
            detail = trim(done.stderr.decode("utf-8", "replace"))
            raise TetherError(f"{argv[0]} {argv[1]} failed (exit {done.returncode}): {detail}")
        return done.stdout.decode("utf-8", "replace")


def _entry(path: str) -> str:
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or path.startswith("-"):
        raise TetherError(f"invalid pass entry path: {path!r}")
    return path


def _fingerprint(colons: str) -> str:
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] == "fpr" and len(fields) > 9 and fields[9]:
            return fields[9]
    raise TetherError("gpg did not report the generated key's fingerprint")
