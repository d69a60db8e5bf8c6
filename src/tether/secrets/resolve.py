"""Replace secret placeholders in rendered objects with values from the password store.

Runs in memory, after the render cache and just before the objects are used (diff, sync),
so no plaintext is ever cached or persisted. The result names every entry it used and the
store's git commit, so the controller can re-sync exactly the apps whose secrets changed.
A missing entry or key fails the whole resolution — half-resolved manifests are never
returned — with an error naming the app, the entry and the object field that asked for it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tether.errors import Reason, TetherError
from tether.resource import ResourceKey, json_copy
from tether.secrets.fields import pointer
from tether.secrets.passbackend import EntryNotFound, SecretBackend
from tether.secrets.placeholders import (
    PREFIX,
    Found,
    Placeholder,
    PlaceholderError,
    apply_filter,
    extract,
    find,
    substitute,
)
from tether.secrets.redact import REDACTOR, Redactor

DEFAULT_CONCURRENCY = 4
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class SecretResolutionError(TetherError):
    """A placeholder could not be resolved; the message names app, entry, object and field, never a value."""

    reason = Reason.SECRET_MISSING


@dataclass(frozen=True)
class SecretUsage:
    """Which entries an app's manifests used, the store commit they were read at (None: not git),
    and which fields of which objects hold resolved values (JSON pointers, as in the rendered
    object: ``/stringData/password``, ``/spec/template/spec/containers/0/env/0/value``)."""

    entries: frozenset[str]
    store_commit: str | None
    fields: Mapping[ResourceKey, frozenset[str]] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ResolvedManifests:
    """New objects with every placeholder replaced, and what they depended on."""

    objects: list[dict[str, Any]]
    usage: SecretUsage


@dataclass
class _Site:
    """A string in an object that holds placeholders, and how to write the resolved text back."""

    container: dict[str, Any] | list[Any]
    key: str | int
    text: str
    found: list[Found]
    base64_data: bool
    where: str  # "Secret prod/db, field data.password, from apps/db.yaml": names, never values
    object_key: ResourceKey | None  # of the object the string sits in (None: no usable metadata)
    pointer: str  # the string's JSON pointer in that object


async def resolve_secrets(
    objects: Sequence[dict[str, Any]],
    backend: SecretBackend,
    *,
    app: str,
    redactor: Redactor = REDACTOR,
    sources: Sequence[str | None] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> ResolvedManifests:
    """Copies of ``objects`` with placeholders in string values (not keys) replaced, plus the usage.

    Placeholders inside base64 ``data`` values of a Secret are found by decoding, replaced,
    and the value re-encoded. Every resolved value is registered with ``redactor``.
    ``sources`` (parallel to ``objects``) names the file each object came from, for errors.
    The pointers of the fields filled in are returned in ``usage.fields`` and recorded in
    ``redactor.fields``, so every display can mask those fields on the live side too.
    """
    if sources is not None and len(sources) != len(objects):
        raise TetherError(f"{len(sources)} source names for {len(objects)} objects").for_app(app)
    resolved = [json_copy(obj) for obj in objects]
    sites = [site for index, obj in enumerate(resolved) for site in _sites(index, obj, app, sources)]
    if not sites:
        return ResolvedManifests(resolved, SecretUsage(frozenset(), None))

    first_use: dict[str, _Site] = {}
    for site in sites:
        for item in site.found:
            first_use.setdefault(item.placeholder.path, site)

    # The commit is read before the entries: if the store moves meanwhile, the recorded commit
    # is older than what was read and the next change check re-syncs, which is safe.
    commit = await backend.store_commit()
    contents = await _read_entries(list(first_use), backend, concurrency)
    for path, content in contents.items():
        if isinstance(content, BaseException):
            raise _entry_error(app, path, content, first_use[path]) from None

    for site in sites:

        def value_for(placeholder: Placeholder, site: _Site = site) -> str:
            value = extract(contents[placeholder.path], placeholder.key)  # type: ignore[arg-type]
            if value is None:
                what = f"has no key {placeholder.key!r}" if placeholder.key is not None else "has an empty first line"
                raise SecretResolutionError(
                    f"secret entry {placeholder.path!r} {what} (needed by {site.where})"
                ).for_app(app)
            redactor.add(value)
            return apply_filter(value, placeholder.filter)

        text = substitute(site.text, site.found, value_for)
        redactor.add(text, lines=False)  # its lines without a value are not secret
        if site.base64_data:
            text = base64.b64encode(text.encode("utf-8", "surrogateescape")).decode("ascii")
        site.container[site.key] = text  # type: ignore[index]
    fields = _fields(sites)
    redactor.fields.add_all(fields)
    return ResolvedManifests(resolved, SecretUsage(frozenset(first_use), commit, fields))


def _fields(sites: Sequence[_Site]) -> dict[ResourceKey, frozenset[str]]:
    """The pointers of the resolved strings, per object."""
    fields: dict[ResourceKey, set[str]] = {}
    for site in sites:
        if site.object_key is not None:
            fields.setdefault(site.object_key, set()).add(site.pointer)
    return {key: frozenset(pointers) for key, pointers in fields.items()}


async def _read_entries(paths: list[str], backend: SecretBackend, concurrency: int) -> dict[str, str | BaseException]:
    """Each entry's content once per resolution pass (at most ``concurrency`` at a time)."""
    limit = asyncio.Semaphore(max(1, concurrency))

    async def read(path: str) -> str:
        async with limit:
            return await backend.show(path)

    results = await asyncio.gather(*(read(path) for path in paths), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result  # cancellation and the like are not resolution errors
    return dict(zip(paths, results, strict=True))


def _sites(index: int, obj: dict[str, Any], app: str, sources: Sequence[str | None] | None) -> Iterator[_Site]:
    is_secret = obj.get("kind") == "Secret" and isinstance(obj.get("data"), dict)
    object_key = ResourceKey.of(obj) if isinstance(obj.get("metadata"), dict) else None
    for container, key, tokens in _strings(obj, []):
        text = container[key]  # type: ignore[index]
        base64_data = False
        if PREFIX not in text:
            if not (is_secret and len(tokens) == 2 and tokens[0] == "data"):
                continue
            decoded = _decode_base64(text)
            if decoded is None or PREFIX not in decoded:
                continue
            text, base64_data = decoded, True
        where = _describe(obj, _field_path(tokens), sources[index] if sources else None)
        try:
            found = find(text)
        except PlaceholderError as exc:
            raise SecretResolutionError(f"{exc} (in {where})").for_app(app) from None
        yield _Site(container, key, text, found, base64_data, where, object_key, pointer(tokens))


def _strings(
    node: Any, tokens: list[str | int]
) -> Iterator[tuple[dict[str, Any] | list[Any], str | int, list[str | int]]]:
    """Every string value under ``node`` with its container, key and path (keys are not visited)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                yield node, key, [*tokens, key]
            elif isinstance(value, dict | list):
                yield from _strings(value, [*tokens, key])
    elif isinstance(node, list):
        for position, value in enumerate(node):
            if isinstance(value, str):
                yield node, position, [*tokens, position]
            elif isinstance(value, dict | list):
                yield from _strings(value, [*tokens, position])


def _decode_base64(text: str) -> str | None:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    if PREFIX.encode() not in raw:
        return None
    return raw.decode("utf-8", "surrogateescape")


def _field_path(tokens: list[str | int]) -> str:
    out = ""
    for token in tokens:
        if isinstance(token, int):
            out += f"[{token}]"
        elif _IDENTIFIER.match(str(token)):
            out += f".{token}" if out else str(token)
        else:
            out += f"[{json.dumps(str(token))}]"
    return out


def _describe(obj: dict[str, Any], field: str, source: str | None) -> str:
    raw = obj.get("metadata")
    metadata: dict[str, Any] = raw if isinstance(raw, dict) else {}
    name = metadata.get("name") or "<unnamed>"
    namespace = metadata.get("namespace")
    ident = f"{namespace}/{name}" if namespace else str(name)
    where = f"{obj.get('kind') or '<no kind>'} {ident}, field {field}"
    return f"{where}, from {source}" if source else where


def _entry_error(app: str, path: str, error: BaseException, site: _Site) -> SecretResolutionError:
    if isinstance(error, EntryNotFound):
        return SecretResolutionError(f"{error} (needed by {site.where})").for_app(app)
    failure = SecretResolutionError(f"secret entry {path!r} could not be read: {error} (needed by {site.where})")
    if isinstance(error, TetherError):
        failure.reason, failure.retryable = error.reason, error.retryable  # a locked key, a pass timeout…
    return failure.for_app(app)
