"""Secrets from ``pass``: placeholder grammar, the ``pass`` backend, resolution, and redaction.

backend = PassBackend()                     # PASSWORD_STORE_DIR / GNUPGHOME like pass
result = await resolve_secrets(objects, backend, app="web")
result.objects                              # new objects, placeholders replaced (in memory only)
result.usage.entries, result.usage.store_commit
REDACTOR.redact(text)                       # every resolved value masked as ********
"""

from tether.secrets.passbackend import EntryNotFound, PassBackend, SecretBackend
from tether.secrets.placeholders import Placeholder, PlaceholderError, check_entry_path, extract, find
from tether.secrets.redact import MASK, REDACTOR, SECRET_MASK, Redactor, mask_secret_objects, redact_processor
from tether.secrets.resolve import ResolvedManifests, SecretResolutionError, SecretUsage, resolve_secrets

__all__ = [
    "MASK",
    "REDACTOR",
    "SECRET_MASK",
    "EntryNotFound",
    "PassBackend",
    "Placeholder",
    "PlaceholderError",
    "Redactor",
    "ResolvedManifests",
    "SecretBackend",
    "SecretResolutionError",
    "SecretUsage",
    "check_entry_path",
    "extract",
    "find",
    "mask_secret_objects",
    "redact_processor",
    "resolve_secrets",
]
