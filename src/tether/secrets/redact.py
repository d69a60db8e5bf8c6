"""Masking secret values wherever text leaves the process: logs, errors, status, API, UI.

Every value the secrets stage resolves is registered with a ``Redactor`` (the process-wide
``REDACTOR`` by default), together with every shape it can come back in — base64, JSON- and
Go-escaped (``secrets.forms``), and each line of a multi-line value — and every string on
its way out goes through ``redact``. Values shorter than ``MIN_SUBSTRING`` characters are
too common to mask inside other text ("on", "1234"...), so they and their escaped shapes are
masked only where a whole string equals them.

Text matching is the last line of defence, for text Tether did not write (API server errors,
tool stderr). Objects are masked by structure first: the redactor also records which fields
of which objects came from placeholders (``fields``), and ``mask_secret_objects`` masks them.
"""

from __future__ import annotations

import base64
import copy
import re
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from tether.resource import ResourceKey
from tether.secrets.fields import SecretFields, mask_field
from tether.secrets.forms import escaped_forms, line_forms

MASK = "********"
SECRET_MASK = "++++++++"
MIN_SUBSTRING = 4
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _union(values: Iterable[str]) -> re.Pattern[str]:
    """One pattern for all ``values``, longest first (a value inside another never masks only part of it)."""
    return re.compile("|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)))


class Redactor:
    """A thread-safe set of secret values and a masker for text that might contain them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._short: set[str] = set()
        # Two patterns, so adding a value does not recompile one for every value known (a fleet has
        # thousands): ``_base`` (values up to the last merge) is applied first, then ``_recent``.
        self._base: re.Pattern[str] | None = None
        self._base_size = 0
        self._recent: set[str] = set()
        self._recent_pattern: re.Pattern[str] | None = None
        self.fields = SecretFields()

    def add(self, value: str, *, lines: bool = True) -> None:
        """Register ``value`` as a secret, with its base64 encodings (padded and unpadded), its
        JSON- and Go-escaped forms and, for a multi-line value, its lines and their escapes.

        ``lines=False`` is for text that merely contains secrets (a config file with a
        placeholder in it): its lines without a value are not secret, those with one are
        masked by that value.
        """
        if not value:
            return
        encoded = base64.b64encode(value.encode("utf-8", "surrogateescape")).decode("ascii")
        forms = {value, value.strip(), encoded, encoded.rstrip("=")}
        escaped = escaped_forms(value) | escaped_forms(value.strip()) | (line_forms(value) if lines else set())
        short = len(value.strip()) < MIN_SUBSTRING
        with self._lock:
            for form in forms | escaped:
                if not form:
                    continue
                if len(form) < MIN_SUBSTRING or (short and form in escaped):
                    self._short.add(form)
                elif form not in self._values:
                    self._values.add(form)
                    self._recent.add(form)
                    self._recent_pattern = None
                    # Longest first across both patterns: a value containing a known one merges at once.
                    if self._base is not None and self._base.search(form):
                        self._base = None

    def add_all(self, values: Iterable[str]) -> None:
        for value in values:
            self.add(value)

    def __len__(self) -> int:
        with self._lock:
            return len(self._values) + len(self._short)

    def redact(self, text: str) -> str:
        """``text`` with every registered value replaced by ``********`` (longest values first)."""
        if not text:
            return text
        with self._lock:
            if text in self._short:
                return MASK
            if not self._values:
                return text
            base, recent = self._patterns()
        text = base.sub(MASK, text)
        return recent.sub(MASK, text) if recent is not None else text

    def _patterns(self) -> tuple[re.Pattern[str], re.Pattern[str] | None]:
        """Merge into ``_base`` once the recent values are many (or ``_base`` was dropped); under the lock."""
        if self._base is None or len(self._recent) > max(64, self._base_size // 4):
            self._base, self._base_size = _union(self._values), len(self._values)
            self._recent.clear()
            self._recent_pattern = None
        if self._recent and self._recent_pattern is None:
            self._recent_pattern = _union(self._recent)
        return self._base, self._recent_pattern if self._recent else None

    def redact_any(self, value: Any) -> Any:
        """Mask every string inside ``value`` (dicts, lists, tuples); other objects by their ``str``."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {k: self.redact_any(v) for k, v in value.items()}
        if isinstance(value, tuple):
            return tuple(self.redact_any(v) for v in value)
        if isinstance(value, list | set | frozenset):
            return [self.redact_any(v) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        text = str(value)
        masked = self.redact(text)
        return masked if masked != text else value


REDACTOR = Redactor()


def redact_processor(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor masking every secret in the event dict with the process-wide ``REDACTOR``.

    Place it after ``format_exc_info`` (so tracebacks are text by then) and before the renderer.
    """
    for key, value in list(event_dict.items()):
        event_dict[key] = REDACTOR.redact_any(value)
    return event_dict


def mask_secret_objects(objects: list[dict[str, Any]], redactor: Redactor = REDACTOR) -> list[dict[str, Any]]:
    """Copies of ``objects`` with every Secret's ``data`` / ``stringData`` value shown as ``++++++++``,
    and every other field filled from a placeholder (as ``redactor.fields`` recorded it) as
    ``********``, what the redactor has always shown for it.

    For display (``tether render`` without ``--show-secrets``); keys stay visible so the shape
    can be reviewed. The last-applied-configuration annotation of a Secret is masked too.
    """
    masked: list[dict[str, Any]] = []
    for obj in objects:
        out = copy.deepcopy(obj)
        if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
            for pointer in redactor.fields.of(ResourceKey.of(obj)):
                mask_field(out, pointer, MASK)
        if not isinstance(out, dict) or out.get("kind") != "Secret":
            masked.append(out)
            continue
        for field in ("data", "stringData"):
            if isinstance(out.get(field), dict):
                out[field] = {key: SECRET_MASK for key in out[field]}
        annotations = (out.get("metadata") or {}).get("annotations")
        if isinstance(annotations, dict) and _LAST_APPLIED in annotations:
            annotations[_LAST_APPLIED] = SECRET_MASK
        masked.append(out)
    return masked
