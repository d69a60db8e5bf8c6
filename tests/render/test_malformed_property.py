"""Generated malformed manifests through render, the pure diff and health: success or a TetherError, never a traceback.

Each example takes a valid object, breaks it (a value of another type, a YAML tag that
is not JSON, an alias bomb, a recursive alias, odd keys, deep nesting, a huge integer)
anywhere in its tree, writes it as a manifest file and feeds it through:

- render (a local directory source, through ``tether.render.render``) and what ``tether
  render`` does next (mask secrets, print YAML and JSON);
- the pure diff: ``normalise``, ``mask_secret``, ``overlay``, ``changed_paths`` and
  ``unified`` with the object on either side;
- health: ``tether health``'s reader and ``explain``.

Whatever parses must be plain JSON data (``json.dumps(allow_nan=False)`` accepts it).
"""

from __future__ import annotations

import asyncio
import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.cli.health import read_objects
from tether.cli.render import format_objects
from tether.diff import mask_secret, normalise
from tether.diff.app import overlay
from tether.diff.compare import changed_paths, unified
from tether.errors import TetherError
from tether.health import explain
from tether.model.source import ApplicationSource
from tether.render import render
from tether.resource import ResourceKey, annotation_options, mark, owner_app
from tether.secrets import mask_secret_objects

BASES: list[dict[str, Any]] = [
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}, "annotations": {"a": "b"}},
        "spec": {
            "replicas": 2,
            "template": {"spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}},
        },
        "status": {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 1, "observedGeneration": 1},
    },
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "1", "b": "x"}},
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "finalizers": ["x"]},
        "data": {"a": "aGk="},
        "stringData": {"b": "c"},
    },
    {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.example.com"},
        "spec": {"group": "example.com", "names": {"kind": "Thing", "plural": "things"}, "scope": "Namespaced"},
    },
    {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "t", "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "1"}]},
        "spec": {"x": [1, 2.5, True, None]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    },
    {
        "apiVersion": "v1",
        "kind": "List",
        "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"phase": "Running"}}],
    },
]

# YAML fragments put where a value was; most are not JSON data or break a limit.
FRAGMENTS = [
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "!!omap [{a: 1}]",
    "!!pairs [{a: 1}]",
    "!!timestamp 2024-01-01",
    "!!python/object:os.system x",
    "!Ref x",
    ".nan",
    "-.inf",
    "1.0e999",
    "!!int twelve",
    "!!float x",
    "!!bool maybe",
    "!!null x",
    "!!str 12",
    "{1: a, true: b}",
    "{null: a}",
    "{1.5: a}",
    "{? [a]: b}",
    "&r [*r]",
    "&m {k: *m}",
    "9" * 5000,
    "[" * 300 + "]" * 300,
    "{a: " * 150 + "1" + "}" * 150,
    "2024-01-01",
    "12:30",
    "0x1F",
    "~",
    "''",
    "[]",
    "{}",
]
BOMB = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
    f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
SENTINEL = "__tether_fragment__"


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_paths(child, (*prefix, index)))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    value[path[0]] = _replace(value[path[0]], path[1:], new)
    return value


@st.composite
def manifests(draw: st.DrawFn) -> str:
    """The text of a manifest file with one or two breakages somewhere in an object's tree."""
    obj = copy.deepcopy(draw(st.sampled_from(BASES)))
    fragment: str | None = None
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(_paths(obj)))
        how = draw(st.sampled_from(["value", "fragment", "key"]))
        if how == "value":
            obj = _replace(obj, path, draw(JSON_VALUES))
        elif how == "fragment" and fragment is None and path:
            fragment = draw(st.sampled_from(FRAGMENTS))
            obj = _replace(obj, path, SENTINEL)
        else:
            target = obj
            for step in path:
                target = target[step]
            if isinstance(target, dict):
                target[draw(st.sampled_from(["metadata", "labels", "data", "spec", "items", "status"]))] = draw(
                    JSON_VALUES
                )
    text = yaml.safe_dump(obj, sort_keys=False, default_flow_style=True, width=10_000)
    if fragment is not None:
        text = text.replace(SENTINEL, fragment)
    if draw(st.integers(0, 9)) == 0:
        text += "---\n" + BOMB
    return text


def _as_json(objects: list[dict[str, Any]]) -> None:
    json.dumps(objects, allow_nan=False)


def _diff(desired: dict[str, Any], live: dict[str, Any]) -> None:
    key = ResourceKey.of(desired)
    marked = normalise(mark(desired, "app"))
    live_n = normalise(live)
    for a, b in ((live_n, marked), (marked, live_n), (None, marked), (marked, None)):
        masked_a, masked_b = mask_secret(a, b)
        changed_paths(masked_a, masked_b)
        unified(masked_a, masked_b, str(key))
    overlay(live_n, marked)
    owner_app(desired)
    annotation_options(desired, "sync-options")


def _run(text: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "manifest.yaml").write_text(text)
        source = ApplicationSource.model_validate({"repoURL": str(root)})
        try:
            objects = asyncio.run(render("app", source, root)).objects
        except TetherError:
            objects = None
        if objects is not None:
            _as_json(objects)
            for output in ("yaml", "json"):
                format_objects(mask_secret_objects(objects), output)
            for obj in objects:
                for base in BASES[:5]:
                    _diff(obj, base)
                    _diff(base, obj)
        try:
            live = read_objects(root / "manifest.yaml")
        except TetherError:
            return
        _as_json(live)
        for obj in live:
            explain(obj)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests())
def test_malformed_manifests_give_a_tether_error_or_plain_json_objects(text: str) -> None:
    _run(text)


def test_every_fragment_in_every_place_of_every_base() -> None:
    """The exhaustive small version: each fragment at each path of each base object."""
    for base in BASES:
        for path in _paths(base)[1:]:
            for fragment in FRAGMENTS[:22]:
                obj = _replace(copy.deepcopy(base), path, SENTINEL)
                _run(yaml.safe_dump(obj, default_flow_style=True, width=10_000).replace(SENTINEL, fragment))
