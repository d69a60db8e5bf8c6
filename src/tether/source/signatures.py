"""Commit signatures: a project's ``signatureKeys`` (Argo CD's AppProject field) checked with GnuPG.

Argo CD syncs a project's apps only at commits signed with one of the project's keys, whose
public halves an operator puts in a ConfigMap. Tether does the same: the armored public keys in
ConfigMap ``tether-gpg-keys`` (in the controller namespace; any data key) form a keyring of their
own, ``git verify-commit --raw`` checks a commit against it, and ``verdict`` reads GnuPG's status
lines. A key is named by its 16-hex-digit long ID, the signing (sub)key's or its primary key's.

Public surface::

    keyring = await Keyring.build(directory, armored_keys)   # a private GNUPGHOME; digest names its keys
    verdict = parse_status(text)                              # Verdict(state, key_ids, detail)
    problem = verdict.refusal(sha, allowed_key_ids)           # None when the commit may be synced
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tether.errors import TetherError
from tether.proc import base_env, run, trim

KEYS_CONFIGMAP = "tether-gpg-keys"
GPG_TIMEOUT = 30.0

GOOD, BAD, UNSIGNED, UNKNOWN_KEY, EXPIRED_KEY, REVOKED_KEY = (
    "good",
    "bad",
    "unsigned",
    "unknown-key",
    "expired-key",
    "revoked-key",
)


@dataclass(frozen=True)
class Verdict:
    """What GnuPG said of one commit's signature; ``key_ids`` are long key IDs (upper case)."""

    state: str
    key_ids: frozenset[str] = frozenset()

    def refusal(self, sha: str, allowed: Iterable[str]) -> str | None:
        """Why commit ``sha`` may not be synced under keys ``allowed``; None when it may."""
        wanted = {long_key_id(k) for k in allowed}
        short = sha[:12]
        shown = ", ".join(sorted(self.key_ids)) or "an unknown key"
        if self.state == UNSIGNED:
            return f"revision {short} is not signed, and the project requires a signature by one of its signatureKeys"
        if self.state == UNKNOWN_KEY:
            return f"revision {short} is signed with {shown}, whose public key is not in ConfigMap {KEYS_CONFIGMAP}"
        if self.state == BAD:
            return f"revision {short} has a bad signature (made with {shown})"
        if self.state in (EXPIRED_KEY, REVOKED_KEY):
            return f"revision {short} is signed with {shown}, {'an expired' if self.state == EXPIRED_KEY else 'a revoked'} key"
        if self.state != GOOD or not self.key_ids & wanted:
            return f"revision {short} is signed with {shown}, which is not one of the project's signatureKeys"
        return None


def long_key_id(key: str) -> str:
    """A key ID or fingerprint as the 16-hex-digit long ID GnuPG reports (``0x`` and spaces dropped)."""
    clean = key.replace(" ", "").removeprefix("0x").removeprefix("0X").upper()
    return clean[-16:]


def parse_status(text: str) -> Verdict:
    """The verdict in GnuPG's ``[GNUPG:]`` status lines (what ``git verify-commit --raw`` prints).

    ``VALIDSIG`` carries the signing key's fingerprint and, last, its primary key's: both count,
    so a project may name either. No status line at all means the commit carries no signature.
    """
    state = UNSIGNED
    ids: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("[GNUPG:] "):
            continue
        word, *fields = line[len("[GNUPG:] ") :].split()
        if word == "GOODSIG" and fields:
            state = GOOD if state in (UNSIGNED, GOOD) else state
            ids.add(long_key_id(fields[0]))
        elif word == "VALIDSIG" and fields:
            ids.add(long_key_id(fields[0]))
            if len(fields) >= 10:
                ids.add(long_key_id(fields[-1]))
        elif word == "BADSIG" and fields:
            state = BAD
            ids.add(long_key_id(fields[0]))
        elif word in ("ERRSIG", "NO_PUBKEY") and fields:
            state = BAD if state == BAD else UNKNOWN_KEY
            ids.add(long_key_id(fields[0]))
        elif word == "EXPKEYSIG" and fields:
            state = EXPIRED_KEY
            ids.add(long_key_id(fields[0]))
        elif word == "REVKEYSIG" and fields:
            state = REVOKED_KEY
            ids.add(long_key_id(fields[0]))
    return Verdict(state, frozenset(ids))


@dataclass(frozen=True)
class Keyring:
    """A private GnuPG home holding only the configured public keys; ``digest`` changes with them."""

    home: Path
    digest: str

    @classmethod
    async def build(cls, directory: Path, armored: Sequence[tuple[str, str]]) -> Keyring:
        """Import ``(name, armored key)`` pairs into a new home under ``directory``.

        A key that does not import is an error naming its ConfigMap key, never a silent gap.
        """
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        home = Path(tempfile.mkdtemp(prefix="keyring-", dir=directory))
        try:
            for name, text in armored:
                # gpg may exit 2 after a good import only because it could not reach an agent (whose socket
                # path can be too long under a deep state directory): its status lines are what counts.
                done = await run(
                    ["gpg", "--batch", "--no-tty", "--no-autostart", "--status-fd", "1", "--homedir", str(home)]
                    + ["--import"],
                    env=base_env({"GNUPGHOME": str(home)}),
                    input=text.encode("utf-8"),
                    timeout=GPG_TIMEOUT,
                    check=False,
                    what=f"gpg --import of ConfigMap {KEYS_CONFIGMAP} key {name!r}",
                )
                if "[GNUPG:] IMPORT_OK " not in done.text:
                    why = trim(done.stderr.decode("utf-8", "replace"), 500) or f"exit {done.returncode}"
                    raise TetherError(f"ConfigMap {KEYS_CONFIGMAP} key {name!r} is not a public key gpg imports: {why}")
        except BaseException:
            shutil.rmtree(home, ignore_errors=True)
            raise
        digest = hashlib.sha256("\0".join(f"{n}={t}" for n, t in sorted(armored)).encode()).hexdigest()[:16]
        return cls(home, digest)

    def discard(self) -> None:
        """Remove the home (a newer keyring replaced it)."""
        if self.home.is_dir() and os.path.basename(self.home).startswith("keyring-"):
            shutil.rmtree(self.home, ignore_errors=True)
