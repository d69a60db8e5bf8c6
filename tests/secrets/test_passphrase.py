"""A store whose GnuPG key needs a passphrase: reported as that, not as gpg's "No secret key".

Real gpg, gpg-agent and ``pass``: a throwaway GnuPG home with a key generated *with* a
passphrase, and a store encrypted for it. Tether runs without a terminal, so gpg cannot ask
for the passphrase and says "decryption failed: No secret key", as for a missing key.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tether.errors import TetherError
from tether.proc import base_env
from tether.secrets import PassBackend, Redactor, SecretResolutionError, resolve_secrets
from tether.secrets.passbackend import LockedKey

PASSPHRASE = "canary-passphrase-51f0"
CANARY = "canary-locked-entry-8d2e"
PRESET = "/usr/lib/gnupg/gpg-preset-passphrase"

_KEY_PARAMS = f"""Key-Type: EDDSA
Key-Curve: ed25519
Key-Usage: sign
Subkey-Type: ECDH
Subkey-Curve: cv25519
Subkey-Usage: encrypt
Passphrase: {PASSPHRASE}
Name-Real: Tether Locked Key
Name-Email: locked@example.invalid
Expire-Date: 0
%commit
"""


@dataclass
class LockedStore:
    store_dir: Path
    gnupg_home: Path
    home: Path
    fingerprint: str
    encryption_keygrip: str

    def env(self) -> dict[str, str]:
        return base_env(
            {"GNUPGHOME": str(self.gnupg_home), "PASSWORD_STORE_DIR": str(self.store_dir), "HOME": str(self.home)}
        )

    def run(self, *argv: str, input: str | None = None) -> str:
        done = subprocess.run(argv, env=self.env(), input=input, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def backend(self, gnupg_home: Path | None = None) -> PassBackend:
        return PassBackend(self.store_dir, gnupg_home or self.gnupg_home, environ={"HOME": str(self.home)})

    def forget_passphrase(self) -> None:
        """A fresh agent: nothing cached (key generation may have left the passphrase there)."""
        self.run("gpgconf", "--kill", "gpg-agent")


def _gnupg_home() -> Path:
    """Short, because gpg-agent's socket path must fit in 108 bytes."""
    home = Path(tempfile.mkdtemp(prefix="tgl-", dir="/dev/shm" if Path("/dev/shm").is_dir() else "/tmp"))
    home.chmod(0o700)
    return home


@pytest.fixture(scope="module")
def locked_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LockedStore]:
    base = tmp_path_factory.mktemp("locked")
    store = LockedStore(base / "store", _gnupg_home(), base, "", "")
    try:
        (store.gnupg_home / "gpg-agent.conf").write_text("allow-preset-passphrase\n")
        store.run("gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--gen-key", input=_KEY_PARAMS)
        colons = store.run("gpg", "--batch", "--with-colons", "--with-keygrip", "--list-secret-keys")
        lines = [line.split(":") for line in colons.splitlines()]
        store.fingerprint = next(f[9] for f in lines if f[0] == "fpr")
        store.encryption_keygrip = [f[9] for f in lines if f[0] == "grp"][-1]  # the cv25519 subkey
        store.run("pass", "init", store.fingerprint)
        store.run("pass", "insert", "--multiline", "app/db", input=f"{CANARY}\n")
        yield store
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=store.env(), capture_output=True, timeout=60)
        shutil.rmtree(store.gnupg_home, ignore_errors=True)


async def test_a_locked_key_is_named_and_the_fix_is_said(locked_store: LockedStore) -> None:
    locked_store.forget_passphrase()
    # What gpg itself says, which is what Tether used to pass on:
    shown = subprocess.run(
        ["pass", "show", "app/db"], env=locked_store.env(), capture_output=True, text=True, timeout=60
    )
    assert shown.returncode != 0 and "No secret key" in shown.stderr

    with pytest.raises(LockedKey) as caught:
        await locked_store.backend().show("app/db")
    message = str(caught.value)
    assert "'app/db'" in message and locked_store.fingerprint in message
    assert "needs a passphrase" in message and "gpg-preset-passphrase" in message
    assert "No secret key" not in message and CANARY not in message and PASSPHRASE not in message


async def test_resolution_reports_the_locked_key_with_the_object_that_needs_it(locked_store: LockedStore) -> None:
    locked_store.forget_passphrase()
    objects = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db"},
            "stringData": {"password": "<pass:app/db>"},
        }
    ]
    with pytest.raises(SecretResolutionError) as caught:
        await resolve_secrets(objects, locked_store.backend(), app="shop", redactor=Redactor())
    message = str(caught.value)
    assert "app 'shop'" in message and "needs a passphrase" in message and "Secret db" in message


async def test_a_preset_passphrase_unlocks_it(locked_store: LockedStore) -> None:
    """The advice in the message works: with the passphrase preset in gpg-agent, the entry reads."""
    locked_store.forget_passphrase()
    locked_store.run("gpg-connect-agent", "/bye")  # start the agent that will hold it
    locked_store.run(PRESET, "--preset", locked_store.encryption_keygrip, input=PASSPHRASE)
    try:
        assert await locked_store.backend().show("app/db") == f"{CANARY}\n"
    finally:
        locked_store.forget_passphrase()


async def test_a_missing_key_is_told_apart_from_a_locked_one(locked_store: LockedStore) -> None:
    empty_home = _gnupg_home()
    try:
        with pytest.raises(TetherError) as caught:
            await locked_store.backend(gnupg_home=empty_home).show("app/db")
    finally:
        subprocess.run(
            ["gpgconf", "--kill", "all"], env={**locked_store.env(), "GNUPGHOME": str(empty_home)}, timeout=60
        )
        shutil.rmtree(empty_home, ignore_errors=True)
    assert not isinstance(caught.value, LockedKey)
    assert "holds no secret key" in str(caught.value) and str(empty_home) in str(caught.value)
