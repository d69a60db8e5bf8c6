"""Signed commits for projects with ``signatureKeys``: the keyring from ConfigMap ``tether-gpg-keys``, and the check.

The check runs where a revision is resolved for rendering (``Comparer.desired``), so a comparison, a
manual sync, a rollback and a retry all go through it; a refusal is a ``ComparisonError`` (or the
operation's ``Error``) naming the commit and the key, and nothing is rendered or applied. Verdicts
are remembered per repository, commit and keyring: a commit is verified once, not per reconcile.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from tether.errors import Reason, TetherError
from tether.model import Application
from tether.model.source import ApplicationSource
from tether.pipeline import is_local_source
from tether.source import Credentials, GitCache, normalise_url
from tether.source.signatures import KEYS_CONFIGMAP, Keyring, Verdict

log = structlog.get_logger(__name__)

MAX_VERDICTS = 4096


class CommitSignatures:
    """The configured public keys and the verdicts on the commits checked against them."""

    def __init__(
        self,
        git: GitCache,
        directory: Path,
        credentials_for: Callable[[str], Credentials | None],
        required_keys: Callable[[Application], tuple[str, ...]],
    ) -> None:
        self.git, self.directory, self.credentials_for = git, directory, credentials_for
        self.required_keys = required_keys
        self.keyring: Keyring | None = None
        self.keyring_error: str | None = None
        self._lock = asyncio.Lock()
        self._verdicts: OrderedDict[tuple[str, str, str], Verdict] = OrderedDict()

    async def load(self, configmap: Mapping[str, Any] | None) -> None:
        """Replace the keyring with the keys ``configmap`` holds now (None: no keys, every signature refused)."""
        data = (configmap or {}).get("data") or {}
        keys = sorted((str(name), str(text)) for name, text in data.items())
        async with self._lock:
            old = self.keyring
            try:
                self.keyring = await Keyring.build(self.directory, keys) if keys else None
                self.keyring_error = None
            except TetherError as exc:
                self.keyring, self.keyring_error = None, str(exc)
                log.warning("cannot load the signature keys", configmap=KEYS_CONFIGMAP, error=str(exc))
            if old is not None:
                old.discard()
            self._verdicts.clear()

    async def check(self, app: Application, sources: Sequence[ApplicationSource], revisions: Sequence[str]) -> None:
        """Raise a ``TetherError`` naming the commit when a source's revision is not signed as the project requires."""
        allowed = self.required_keys(app)
        if not allowed:
            return
        for index, (source, sha) in enumerate(zip(sources, revisions, strict=True)):
            if is_local_source(source.repo_url) or not sha:
                continue
            field = f"spec.sources[{index}]" if app.spec.multi_source else "spec.source"
            refusal = await self._refusal(source.repo_url, sha, allowed)
            if refusal is not None:
                raise TetherError(f"{field}: {refusal}", reason=Reason.UNVERIFIED_SIGNATURE).for_app(app.name)

    async def _refusal(self, url: str, sha: str, allowed: tuple[str, ...]) -> str | None:
        keyring = self.keyring
        if keyring is None:
            why = self.keyring_error or f"ConfigMap {KEYS_CONFIGMAP} holds no public keys"
            return f"revision {sha[:12]} cannot be verified: {why}"
        slot = (normalise_url(url), sha, keyring.digest)
        verdict = self._verdicts.get(slot)
        if verdict is None:
            verdict = await self.git.verify(url, sha, keyring.home, self.credentials_for(url))
            self._verdicts[slot] = verdict
            while len(self._verdicts) > MAX_VERDICTS:
                self._verdicts.popitem(last=False)
        return verdict.refusal(sha, allowed)
