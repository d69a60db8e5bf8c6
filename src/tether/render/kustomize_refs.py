"""Every path a kustomization reads, found by parsing kustomization files recursively.

``LoadRestrictionsRootOnly`` only keeps *files* inside each kustomization's own root;
directories (``resources``/``bases``/``components`` pointing at ``../base``) may be
anywhere on disk. A base in ``../base`` is legitimate inside the repository, so the
repository boundary is enforced here instead: every referenced path — resources, bases,
components, crds, configurations, patches with ``path``, generator files and env files,
generator/transformer/validator configs, replacements, openapi, helmCharts (chart
directory and values files) — is resolved and refused if it leaves the checkout, and
remote (URL) references are refused because renders never use the network. The
directories and files found are recorded as render inputs for the cache key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tether.render.detect import KUSTOMIZATION_NAMES
from tether.render.errors import render_error
from tether.render.manifests import ManifestError, load_yaml
from tether.render.paths import Checkout

_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@|github\.com/|gitlab\.com/|bitbucket\.org/)", re.I)


_ANY, _DIR, _CHART = "any", "dir", "chart"


def find_kustomization(directory: Path) -> Path | None:
    """The kustomization file of a directory, if it has one."""
    for name in KUSTOMIZATION_NAMES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def check_kustomization_tree(checkout: Checkout, root: Path) -> None:
    """Walk the kustomization graph from ``root``; refuse anything outside the checkout; record inputs."""
    seen: set[Path] = set()
    pending = [root]
    while pending:
        directory = pending.pop()
        if directory in seen:
            continue
        seen.add(directory)
        checkout.record(directory)
        checkout.check_symlinks(directory, what=f"kustomization {checkout.relative(directory)}")
        kustomization = find_kustomization(directory)
        if kustomization is None:
            continue
        data = load_kustomization(checkout, kustomization)
        for field, ref, kind in _references(data):
            what = f"{checkout.relative(kustomization)} {field}"
            if _REMOTE.match(ref):
                raise render_error(checkout.app, what, f"{ref!r}: remote resources are not supported (no network)")
            target = checkout.resolve(directory, ref, what=what, must_exist=False)
            if target is None and kind == _CHART:
                raise render_error(checkout.app, what, f"chart not vendored at {ref!r} (Tether never downloads charts)")
            if target is None:
                continue  # kustomize itself reports the missing path
            if target.is_dir():
                pending.append(target)
            elif kind != _ANY:
                raise render_error(checkout.app, what, f"{ref!r} is not a directory")


def load_kustomization(checkout: Checkout, path: Path) -> dict[str, Any]:
    """A kustomization file as a mapping (empty file: empty mapping)."""
    try:
        data = load_yaml(checkout.read_text(path, what=checkout.relative(path)))
    except ManifestError as exc:
        raise render_error(checkout.app, checkout.relative(path), str(exc)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise render_error(checkout.app, checkout.relative(path), "must be a YAML mapping")
    return data


def _references(data: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(field, path, kind) for every local path the kustomization names; kind says what it must be."""
    for field in ("resources", "bases", "components", "crds", "configurations"):
        for index, ref in enumerate(_strings(data.get(field))):
            yield f"{field}[{index}]", ref, _DIR if field in ("bases", "components") else _ANY
    for field in ("generators", "transformers", "validators"):
        for index, ref in enumerate(_strings(data.get(field))):
            if "\n" not in ref:  # otherwise an inline config
                yield f"{field}[{index}]", ref, _ANY
    for index, ref in enumerate(_strings(data.get("patchesStrategicMerge"))):
        if "\n" not in ref and not ref.lstrip().startswith(("{", "apiVersion:")):
            yield f"patchesStrategicMerge[{index}]", ref, _ANY
    for field in ("patches", "patchesJson6902", "replacements"):
        for index, item in enumerate(_mappings(data.get(field))):
            if isinstance(item.get("path"), str):
                yield f"{field}[{index}].path", item["path"], _ANY
    for field in ("configMapGenerator", "secretGenerator"):
        for index, generator in enumerate(_mappings(data.get(field))):
            for key in ("files", "envs"):
                for number, entry in enumerate(_strings(generator.get(key))):
                    yield f"{field}[{index}].{key}[{number}]", entry.split("=", 1)[-1], _ANY
            if isinstance(generator.get("env"), str):
                yield f"{field}[{index}].env", generator["env"], _ANY
    openapi = data.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        yield "openapi.path", openapi["path"], _ANY
    yield from _helm_references(data)


def _helm_references(data: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    charts = _mappings(data.get("helmCharts"))
    raw_globals = data.get("helmGlobals")
    globals_: dict[str, Any] = raw_globals if isinstance(raw_globals, dict) else {}
    home = globals_.get("chartHome")
    chart_home: str = home if isinstance(home, str) else "charts"
    if charts:
        yield "helmGlobals.chartHome", chart_home, _ANY
    if isinstance(globals_.get("configHome"), str):
        yield "helmGlobals.configHome", globals_["configHome"], _ANY
    for index, chart in enumerate(charts):
        if isinstance(chart.get("name"), str):
            yield f"helmCharts[{index}].name", f"{chart_home}/{chart['name']}", _CHART
        if isinstance(chart.get("valuesFile"), str):
            yield f"helmCharts[{index}].valuesFile", chart["valuesFile"], _ANY
        for number, extra in enumerate(_strings(chart.get("additionalValuesFiles"))):
            yield f"helmCharts[{index}].additionalValuesFiles[{number}]", extra, _ANY
    for index, legacy in enumerate(_mappings(data.get("helmChartInflationGenerator"))):
        for key in ("chartHome", "values"):
            if isinstance(legacy.get(key), str):
                yield f"helmChartInflationGenerator[{index}].{key}", legacy[key], _ANY


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _mappings(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
