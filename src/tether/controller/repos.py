"""Repository credentials from Secrets labelled ``tether.dev/secret-type: repository`` (Argo CD's keys).

Keys: ``url``, and ``username`` + ``password`` (HTTPS) or ``sshPrivateKey`` (+ optional
``knownHosts``). The longest ``url`` that prefixes a repository's URL wins, so one Secret can
serve every repository of an organisation (Argo CD's credential templates).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from tether.source import Credentials, normalise_url


def _value(secret: Mapping[str, Any], key: str) -> str | None:
    if key in (secret.get("stringData") or {}):
        return str(secret["stringData"][key])
    raw = (secret.get("data") or {}).get(key)
    if raw is None:
        return None
    try:
        return base64.b64decode(str(raw), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


class RepoCredentials:
    """Credentials by normalised URL prefix, kept in memory only."""

    def __init__(self) -> None:
        self._by_secret: dict[str, tuple[str, Credentials]] = {}

    def secret_changed(self, name: str, secret: Mapping[str, Any] | None) -> frozenset[str]:
        """Record a repository Secret (None: deleted); returns the URL prefixes whose credentials changed."""
        old = self._by_secret.pop(name, None)
        changed = {old[0]} if old else set()
        if secret is not None:
            url = _value(secret, "url")
            if url:
                creds = Credentials(
                    username=_value(secret, "username"),
                    password=_value(secret, "password"),
                    ssh_private_key=_value(secret, "sshPrivateKey"),
                    known_hosts=_value(secret, "knownHosts"),
                )
                prefix = normalise_url(url)
                self._by_secret[name] = (prefix, creds)
                changed.add(prefix)
        return frozenset(changed)

    def lookup(self, url: str) -> Credentials | None:
        """The credentials whose URL is the longest prefix of ``url``, or None (anonymous)."""
        wanted = normalise_url(url)
        best: tuple[str, Credentials] | None = None
        for prefix, creds in self._by_secret.values():
            if (wanted == prefix or wanted.startswith(prefix.rstrip("/") + "/")) and (
                best is None or len(prefix) > len(best[0])
            ):
                best = (prefix, creds)
        return best[1] if best else None
