"""Webhook secrets, read from the data of the ``tether-webhook`` Secret.

One key per provider: ``github``, ``gitlab``, ``gitea``, ``gogs``, ``bitbucket`` (the hook
UUID), ``bitbucketserver``, ``azuredevops-username`` with ``azuredevops-password``, and
``generic``. Values are base64, as in any Secret's ``.data``. A value that is not a string,
not valid base64, or empty after decoding counts as not configured; reading never raises.
Trailing line breaks are dropped (``echo secret | base64`` adds one that no provider sends).
Non-UTF-8 bytes are kept as they are (surrogate escapes), so an HMAC key is the exact bytes
of the Secret. No field appears in ``repr``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.server.webhook.events import PROVIDERS

# Secret data key -> field name.
_KEYS = {
    "github": "github",
    "gitlab": "gitlab",
    "gitea": "gitea",
    "gogs": "gogs",
    "bitbucket": "bitbucket",
    "bitbucketserver": "bitbucketserver",
    "azuredevops-username": "azuredevops_username",
    "azuredevops-password": "azuredevops_password",
    "generic": "generic",
}
_SINGLE_SECRET_PROVIDERS = frozenset({"github", "gitlab", "gitea", "gogs", "bitbucket", "bitbucketserver", "generic"})


@dataclass(frozen=True)
class WebhookSecrets:
    github: str = field(default="", repr=False)
    gitlab: str = field(default="", repr=False)
    gitea: str = field(default="", repr=False)
    gogs: str = field(default="", repr=False)
    bitbucket: str = field(default="", repr=False)  # the hook UUID Bitbucket Cloud sends in X-Hook-UUID
    bitbucketserver: str = field(default="", repr=False)
    azuredevops_username: str = field(default="", repr=False)
    azuredevops_password: str = field(default="", repr=False)
    generic: str = field(default="", repr=False)

    @classmethod
    def from_secret_data(cls, data: Mapping[str, Any] | None) -> WebhookSecrets:
        """Secrets from a Kubernetes Secret's ``.data`` (base64 values); bad values are skipped, never raised."""
        if not isinstance(data, Mapping):
            return cls()
        values: dict[str, str] = {}
        for key, name in _KEYS.items():
            decoded = _decode(data.get(key))
            if decoded:
                values[name] = decoded
        return cls(**values)

    def configured(self, provider: str) -> bool:
        """Whether ``provider`` has what its check needs (Azure DevOps: both username and password)."""
        if provider == "azuredevops":
            return bool(self.azuredevops_username and self.azuredevops_password)
        if provider in _SINGLE_SECRET_PROVIDERS:
            return bool(getattr(self, provider))
        return False

    def configured_providers(self) -> tuple[str, ...]:
        """The providers with a secret, for a log line at start-up (names only)."""
        return tuple(p for p in PROVIDERS if self.configured(p))


def _decode(value: object) -> str:
    if not isinstance(value, str):
        return ""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ""
    return raw.decode("utf-8", "surrogateescape").rstrip("\r\n")
