"""The shapes a secret value takes in text that other programs wrote about it.

A value leaves Tether in an object; it can come back inside text Tether did not write: an
API server error quotes it Go-style (``%q``: ``Invalid value: "a\\"b"``), a JSON document
escapes it (``\\u00c4``, ``\\"``), a tool prints it line by line, and Tether's own JSON
output escapes such a message once more. The redactor registers every shape listed here,
so a value is masked whichever of them it arrives in.
"""

from __future__ import annotations

import json
from collections.abc import Callable

_GO_SHORT = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
_GO_JSON_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_quote(value: str, *, ascii_only: bool = False) -> str:
    """Go's ``strconv.Quote`` (``%q``) without the surrounding quotes; ``ascii_only`` is ``QuoteToASCII`` (``%+q``).

    Printable non-ASCII characters stay as they are (``Ä``, emoji); control characters become
    ``\\n``-style or ``\\x`` escapes, other unprintable ones ``\\u``/``\\U``. A surrogate-escaped
    byte (from undecodable input) is shown as Go shows an invalid byte: ``\\xNN``.
    """
    out: list[str] = []
    for char in value:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in _GO_SHORT:
            out.append(_GO_SHORT[char])
        elif 0x20 <= code < 0x7F or (code >= 0x80 and not ascii_only and char.isprintable()):
            out.append(char)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def json_ascii(value: str) -> str:
    """The inside of a JSON string as Python writes it by default (``ensure_ascii``: ``\\u00c4``, ``\\ud83d\\ude00``)."""
    return json.dumps(value, ensure_ascii=True)[1:-1]


def json_unicode(value: str) -> str:
    """The inside of a JSON string with non-ASCII characters kept (``ensure_ascii=False``)."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


def go_json(value: str) -> str:
    """The inside of a JSON string as Go's ``encoding/json`` writes it: HTML characters and U+2028/9 escaped."""
    text = json_unicode(value)
    for char, escaped in _GO_JSON_HTML.items():
        text = text.replace(char, escaped)
    return text


def _go_ascii(value: str) -> str:
    return go_quote(value, ascii_only=True)


ESCAPERS: tuple[Callable[[str], str], ...] = (json_ascii, json_unicode, go_json, go_quote, _go_ascii)


def escaped_forms(value: str) -> set[str]:
    """``value`` escaped once and twice by every escaper (a Go-quoted error inside a JSON document...)."""
    once = {escape(value) for escape in ESCAPERS}
    twice = {outer(inner) for inner in once for outer in ESCAPERS}
    return (once | twice) - {value}


def line_forms(value: str) -> set[str]:
    """The lines of a multi-line value, stripped, and each one escaped: tools print values line by line."""
    if "\n" not in value:
        return set()
    forms: set[str] = set()
    for line in value.split("\n"):
        line = line.strip()
        if line:
            forms.add(line)
            forms.update(escape(line) for escape in ESCAPERS)
    return forms
