"""The placeholder grammar: ``<pass:path/to/entry>``, ``<pass:path#key>``, and a trailing ``| base64``.

    <pass:db/creds>                   first line of the entry
    <pass:db/creds#username>          value of the first ``username: value`` line, stripped
    <pass:db/creds#password | base64> that value, base64-encoded (spaces around ``|`` optional)

Pure functions only: finding placeholders in text, checking entry paths, and taking a
value out of an entry's decrypted content. Anything that starts with ``<pass:`` but does
not parse is an error, never left in place silently.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass

from tether.errors import Reason, TetherError

PREFIX = "<pass:"
FILTERS = ("base64",)
MAX_SHOWN = 80

_PLACEHOLDER = re.compile(
    r"<pass:(?P<path>[^\s<>#|]+)"
    r"(?:#(?P<key>[^<>#|\n]*?))?"
    r"(?:\s*\|\s*(?P<filter>[^\s<>|]*))?"
    r"\s*>"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PlaceholderError(TetherError):
    """A malformed placeholder or an unsafe entry path (the message names the placeholder, no value)."""

    reason = Reason.RENDER_FAILED


@dataclass(frozen=True)
class Placeholder:
    """One parsed placeholder: which entry, which key (None for the first line), which filter."""

    path: str
    key: str | None = None
    filter: str | None = None

    def __str__(self) -> str:
        key = f"#{self.key}" if self.key is not None else ""
        filt = f" | {self.filter}" if self.filter else ""
        return f"<pass:{self.path}{key}{filt}>"


@dataclass(frozen=True)
class Found:
    """A placeholder and where it sits in the text."""

    start: int
    end: int
    placeholder: Placeholder


def check_entry_path(path: str) -> str:
    """Refuse entry paths that are absolute, climb out (``..``), look like options or have empty segments."""
    problem = None
    if not path:
        problem = "is empty"
    elif _CONTROL.search(path):
        problem = "contains control characters"
    elif path.startswith("/"):
        problem = "is absolute"
    elif path.startswith("-"):
        problem = "starts with '-'"
    elif path.endswith("/") or "//" in path:
        problem = "has an empty segment"
    elif any(segment in (".", "..") for segment in path.split("/")):
        problem = "has a '.' or '..' segment"
    if problem:
        raise PlaceholderError(f"secret entry path {_shown(path)!r} {problem}")
    return path


def find(text: str) -> list[Found]:
    """Every placeholder in ``text``, in order; a ``<pass:`` that does not parse raises ``PlaceholderError``."""
    found: list[Found] = []
    position = text.find(PREFIX)
    while position != -1:
        match = _PLACEHOLDER.match(text, position)
        if match is None:
            raise PlaceholderError(f"malformed secret placeholder {_shown(text[position:])!r}")
        key = match.group("key")
        if key is not None:
            key = key.strip()
            if not key:
                raise PlaceholderError(f"secret placeholder {_shown(match.group(0))!r} has an empty key")
        filt = match.group("filter")
        if filt is not None and filt not in FILTERS:
            raise PlaceholderError(
                f"secret placeholder {_shown(match.group(0))!r}: unknown filter {filt!r} (known: {', '.join(FILTERS)})"
            )
        path = check_entry_path(match.group("path"))
        found.append(Found(match.start(), match.end(), Placeholder(path, key, filt)))
        position = text.find(PREFIX, match.end())
    return found


def substitute(text: str, found: list[Found], value_for: Callable[[Placeholder], str]) -> str:
    """``text`` with each found placeholder replaced by ``value_for(placeholder)``."""
    parts: list[str] = []
    last = 0
    for item in found:
        parts.append(text[last : item.start])
        parts.append(value_for(item.placeholder))
        last = item.end
    parts.append(text[last:])
    return "".join(parts)


def extract(content: str, key: str | None) -> str | None:
    """The first line of an entry, or the stripped value of its first ``key: value`` line; None if absent."""
    lines = content.split("\n")
    if key is None:
        first = lines[0].rstrip("\r")
        return first if first else None
    for line in lines:
        name, sep, value = line.partition(":")
        if sep and name.strip() == key:
            return value.strip()
    return None


def apply_filter(value: str, filt: str | None) -> str:
    if filt == "base64":
        return base64.b64encode(value.encode("utf-8")).decode("ascii")
    return value


def _shown(text: str) -> str:
    text = text.split("\n", 1)[0]
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…"
