"""Argo CD's include/exclude globs for directory apps (gobwas/glob without separators).

Argo CD matches ``spec.source.directory.include`` / ``exclude`` against the file's path
relative to the app path with github.com/gobwas/glob compiled without separators, so
``*`` also crosses ``/``. Syntax: ``*`` / ``**`` any run of characters, ``?`` one
character, ``[abc]`` ``[a-z]`` ``[!abc]`` classes, ``{a,b}`` alternatives (nestable, may
hold wildcards), ``\\`` escapes the next character.
"""

from __future__ import annotations

import re
from functools import lru_cache


class GlobSyntaxError(ValueError):
    """The pattern cannot be compiled."""


def glob_match(pattern: str, text: str) -> bool:
    """Whether ``text`` matches ``pattern`` as a whole."""
    return compile_glob(pattern).fullmatch(text) is not None


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    regex, end = _sequence(pattern, 0, in_braces=False)
    if end != len(pattern):
        raise GlobSyntaxError(f"unexpected {pattern[end]!r} at position {end} in {pattern!r}")
    return re.compile(regex, re.DOTALL)


def _sequence(pattern: str, i: int, *, in_braces: bool) -> tuple[str, int]:
    """Translate until the end, or (inside braces) until an unescaped ``,`` or ``}``."""
    out: list[str] = []
    while i < len(pattern):
        char = pattern[i]
        if in_braces and char in ",}":
            return "".join(out), i
        if char == "\\":
            if i + 1 >= len(pattern):
                raise GlobSyntaxError(f"trailing backslash in {pattern!r}")
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif char == "*":
            while i < len(pattern) and pattern[i] == "*":
                i += 1
            out.append(".*")
        elif char == "?":
            out.append(".")
            i += 1
        elif char == "[":
            regex, i = _char_class(pattern, i)
            out.append(regex)
        elif char == "{":
            regex, i = _alternatives(pattern, i)
            out.append(regex)
        elif char == "}" and not in_braces:
            raise GlobSyntaxError(f"unbalanced '}}' in {pattern!r}")
        else:
            out.append(re.escape(char))
            i += 1
    if in_braces:
        raise GlobSyntaxError(f"unclosed '{{' in {pattern!r}")
    return "".join(out), i


def _alternatives(pattern: str, i: int) -> tuple[str, int]:
    options: list[str] = []
    i += 1
    while True:
        regex, i = _sequence(pattern, i, in_braces=True)
        options.append(regex)
        if pattern[i] == "}":
            return "(?:" + "|".join(options) + ")", i + 1
        i += 1  # past ','


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    end = pattern.find("]", i + 1)
    if end == -1:
        raise GlobSyntaxError(f"unclosed '[' in {pattern!r}")
    body = pattern[i + 1 : end]
    negate = body.startswith("!")
    if negate:
        body = body[1:]
    if not body:
        raise GlobSyntaxError(f"empty character class in {pattern!r}")
    parts: list[str] = []
    j = 0
    while j < len(body):
        if j + 2 < len(body) and body[j + 1] == "-":
            parts.append(f"{re.escape(body[j])}-{re.escape(body[j + 2])}")
            j += 3
        else:
            parts.append(re.escape(body[j]))
            j += 1
    return ("[^" if negate else "[") + "".join(parts) + "]", end + 1
