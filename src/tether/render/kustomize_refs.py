"""Every path a kustomization reads, found by parsing kustomization files recursively.

``LoadRestrictionsRootOnly`` only keeps *files* inside each kustomization's own root;
directories (``resources``/``bases``/``components`` pointing at ``../base``) may be
anywhere on disk. A base in ``../base`` is legitimate inside the repository, so the
repository boundary is enforced here instead: every referenced path — resources, bases,
components, crds, configurations, patches with ``path``, generator files and env files,
generator/transformer/validator configs, replacements, openapi, helmCharts (chart
directory and values files) — is resolved and refused if it leaves the checkout. The
directories and files found are recorded as render inputs for the cache key.

Renders never use the network, and kustomize would: a reference in any of those fields
that kustomize reads as a git repository (``git::…``, ``https://…``, ``ssh://…``,
``file://…``, ``user@host:…``, ``github.com/…``, ``…?ref=…``), as an HTTP file or as an
OCI artifact is refused before kustomize starts (``remote_reason``). A ``helmCharts`` entry
with a ``repo`` is only accepted when the chart is already vendored where kustomize looks
for it, at the version asked for, so kustomize never runs ``helm pull``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.render.detect import KUSTOMIZATION_NAMES
from tether.render.errors import render_error
from tether.render.manifests import ManifestError, load_yaml, load_yaml_documents
from tether.render.paths import Checkout

# kustomize's git URL parser (api/internal/git/repospec.go) reads a ``user@`` prefix as an
# ssh address (``git@github.com:org/repo``, ``me@host/org/repo``); ``name@v2.yaml`` stays a file.
_GIT_USER = re.compile(r"^[A-Za-z][A-Za-z0-9-]*@[^/]*/")
_HOSTED = re.compile(r"^(?:git::)?(?:github\.com|gitlab\.com|bitbucket\.org)(?:[/:]|$)", re.I)
_HELM_GENERATOR = "HelmChartInflationGenerator"
DEFAULT_CHART_HOME = "charts"

_ANY, _DIR = "any", "dir"


def remote_reason(ref: str) -> str | None:
    """Why kustomize would fetch ``ref`` from elsewhere (git, HTTP, OCI), or None for a local path.

    Deliberately wider than kustomize's own parser: a colon in the first path segment is
    a scheme (``https:``, ``git::``, ``gh:``, ``oci:``, ``file:``) or git's scp-like
    ``host:path``, and a ``?`` starts the query of a remote URL (``?ref=``, ``?version=``).
    """
    first_segment = ref.split("/", 1)[0]
    if ":" in first_segment:
        return "a URL or a host:path git address"
    if _GIT_USER.match(ref):
        return "a user@host git address"
    if _HOSTED.match(ref):
        return "a hosted git repository"
    if "?" in ref:
        return "a remote URL query (?ref=, ?version=)"
    return None


def find_kustomization(directory: Path) -> Path | None:
    """The kustomization file of a directory, if it has one."""
    for name in KUSTOMIZATION_NAMES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def check_kustomization_tree(checkout: Checkout, root: Path, added: Sequence[tuple[str, str, bool]] = ()) -> None:
    """Walk the kustomization graph from ``root``; refuse anything remote or outside the checkout; record inputs.

    ``added`` are the (spec field, path, must be a directory) references that the Application's
    own overrides add to the root kustomization (patch files, components): checked as the file's
    are, and named by their spec field.
    """
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
        where = checkout.relative(kustomization)
        _refuse_helm_config_home(checkout, where, data)
        references = [(f"{where} {field}", field, ref, kind) for field, ref, kind in _references(data)]
        if directory == root:
            references += [(field, field, ref, _DIR if is_dir else _ANY) for field, ref, is_dir in added]
        for what, field, ref, kind in references:
            target = _local_target(checkout, directory, what, ref)
            if target is None:
                continue  # kustomize itself reports the missing path
            if target.is_dir():
                pending.append(target)
            elif kind != _ANY:
                raise render_error(checkout.app, what, f"{ref!r} is not a directory")
            elif field.startswith(("generators[", "transformers[")):
                _check_generator_file(checkout, directory, what, target)
        for field, inline in _inline_generators(data):
            _check_generator_text(checkout, directory, f"{where} {field}", inline)
        for chart in _helm_charts(data):
            check_helm_chart(checkout, directory, where, chart)


def _local_target(checkout: Checkout, directory: Path, what: str, ref: str) -> Path | None:
    """``ref`` resolved inside the checkout (None when missing); remote forms are refused."""
    reason = remote_reason(ref)
    if reason is not None:
        raise render_error(
            checkout.app,
            what,
            f"{ref!r} is {reason}: remote references are refused (renders never use the network; "
            "vendor it into the repository)",
        )
    return checkout.resolve(directory, ref, what=what, must_exist=False)


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
    """(field, path, kind) for every path the kustomization names; kind says what it must be."""
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
                    path = _file_source_path(entry) if key == "files" else entry
                    yield f"{field}[{index}].{key}[{number}]", path, _ANY
            if isinstance(generator.get("env"), str):
                yield f"{field}[{index}].env", generator["env"], _ANY
    openapi = data.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        yield "openapi.path", openapi["path"], _ANY
    yield from _helm_references(data)


def _file_source_path(entry: str) -> str:
    """The path of a generator ``files`` entry (``[key=]path``), as kustomize's ParseFileSource splits it.

    With more than one ``=`` kustomize refuses the entry; the whole text is checked then.
    """
    return entry.split("=", 1)[1] if entry.count("=") == 1 else entry


def _helm_references(data: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """The chart home and values files; the chart directories themselves are checked by ``check_helm_chart``."""
    charts = _helm_charts(data)
    globals_ = data.get("helmGlobals")
    if charts or (isinstance(globals_, dict) and isinstance(globals_.get("chartHome"), str)):
        yield "helmGlobals.chartHome", _chart_home(data), _ANY
    for index, legacy in enumerate(_mappings(data.get("helmChartInflationGenerator"))):
        if isinstance(legacy.get("chartHome"), str) and legacy["chartHome"]:
            yield f"helmChartInflationGenerator[{index}].chartHome", legacy["chartHome"], _ANY
    for chart in charts:
        for field, ref in chart.value_files:
            yield field, ref, _ANY


def _refuse_helm_config_home(checkout: Checkout, where: str, data: dict[str, Any]) -> None:
    """kustomize hands ``configHome`` to helm as its config, cache and data home; Tether's homes are private."""
    globals_ = data.get("helmGlobals")
    fields = [("helmGlobals.configHome", globals_.get("configHome") if isinstance(globals_, dict) else None)]
    fields += [
        (f"helmChartInflationGenerator[{index}].helmHome", entry.get("helmHome"))
        for index, entry in enumerate(_mappings(data.get("helmChartInflationGenerator")))
    ]
    for field, value in fields:
        if value:
            raise render_error(
                checkout.app, f"{where} {field}", "is not supported: Tether runs helm with private, empty homes"
            )


@dataclass(frozen=True)
class HelmChartRef:
    """One chart kustomize would inflate: where it is declared and where kustomize looks for it."""

    field: str  # e.g. helmCharts[0]
    name: str
    version: str
    repo: str
    home: str  # chart home, relative to the kustomization root
    value_files: tuple[tuple[str, str], ...]

    def vendored_path(self) -> str:
        """Where kustomize's helm generator looks for the chart before it would pull it.

        ``<chartHome>/<name>-<version>/<name>`` when both ``repo`` and ``version`` are set,
        ``<chartHome>/<name>`` otherwise (kustomize's ``absChartHome``).
        """
        if self.repo and self.version:
            return f"{self.home}/{self.name}-{self.version}/{self.name}"
        return f"{self.home}/{self.name}"


def _helm_charts(data: dict[str, Any]) -> list[HelmChartRef]:
    """``helmCharts`` plus the legacy ``helmChartInflationGenerator``, as kustomize merges them."""
    legacy = _mappings(data.get("helmChartInflationGenerator"))
    home = _chart_home(data)
    charts = [
        _chart_ref(f"helmCharts[{index}]", chart, home, ("valuesFile", "additionalValuesFiles"))
        for index, chart in enumerate(_mappings(data.get("helmCharts")))
    ]
    for index, entry in enumerate(legacy):
        renamed = {
            "name": entry.get("chartName"),
            "version": entry.get("chartVersion"),
            "repo": entry.get("chartRepoUrl"),
            "values": entry.get("values"),
        }
        charts.append(_chart_ref(f"helmChartInflationGenerator[{index}]", renamed, home, ("values",)))
    return [chart for chart in charts if chart.name]


def _chart_home(data: dict[str, Any]) -> str:
    """The chart home kustomize uses: ``helmGlobals.chartHome``, else the last legacy one, else ``charts``."""
    globals_ = data.get("helmGlobals")
    if isinstance(globals_, dict):
        home = globals_.get("chartHome")
        return home if isinstance(home, str) and home else DEFAULT_CHART_HOME
    home = DEFAULT_CHART_HOME
    for entry in _mappings(data.get("helmChartInflationGenerator")):
        if isinstance(entry.get("chartHome"), str) and entry["chartHome"]:
            home = entry["chartHome"]
    return home


def _chart_ref(field: str, chart: dict[str, Any], home: str, value_keys: tuple[str, ...]) -> HelmChartRef:
    value_files: list[tuple[str, str]] = []
    for key in value_keys:
        value = chart.get(key)
        if isinstance(value, str) and value:
            value_files.append((f"{field}.{key}", value))
        for number, extra in enumerate(_strings(value)):
            value_files.append((f"{field}.{key}[{number}]", extra))
    return HelmChartRef(
        field=field,
        name=_scalar(chart.get("name")),
        version=_scalar(chart.get("version")),
        repo=_scalar(chart.get("repo")),
        home=home,
        value_files=tuple(value_files),
    )


def check_helm_chart(checkout: Checkout, directory: Path, where: str, chart: HelmChartRef) -> None:
    """Refuse a chart kustomize would have to pull: it must be vendored where kustomize looks, at its version."""
    what = f"{where} {chart.field}"
    expected = chart.vendored_path()
    target = _local_target(checkout, directory, f"{what}.name", expected)
    source = f" from {chart.repo}" if chart.repo else ""
    if target is None or not target.is_dir():
        raise render_error(
            checkout.app,
            what,
            f"chart {chart.name!r}{' ' + chart.version if chart.version else ''}{source} is not vendored at "
            f"{expected!r}; Tether never downloads charts: commit it there (`helm pull --untar`)",
        )
    if chart.repo and chart.version:
        found = _chart_version(checkout, target)
        if found.lstrip("v") != chart.version.lstrip("v"):
            raise render_error(
                checkout.app,
                what,
                f"chart vendored at {expected!r} is version {found or 'unknown'!r}, not {chart.version!r}",
            )


def _chart_version(checkout: Checkout, chart_dir: Path) -> str:
    chart_yaml = chart_dir / "Chart.yaml"
    if not chart_yaml.is_file():
        return ""
    try:
        data = load_yaml(checkout.read_text(chart_yaml, what=checkout.relative(chart_yaml)))
    except ManifestError:
        return ""
    return _scalar(data.get("version")) if isinstance(data, dict) else ""


def _inline_generators(data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Inline generator/transformer configs (YAML text written straight into the list)."""
    for field in ("generators", "transformers"):
        for index, ref in enumerate(_strings(data.get(field))):
            if "\n" in ref:
                yield f"{field}[{index}]", ref


def _check_generator_file(checkout: Checkout, directory: Path, what: str, path: Path) -> None:
    """A generator config file may hold a ``HelmChartInflationGenerator`` that would pull a chart."""
    _check_generator_text(checkout, directory, what, checkout.read_text(path, what=what))


def _check_generator_text(checkout: Checkout, directory: Path, what: str, text: str) -> None:
    """Check every ``HelmChartInflationGenerator`` in a generator config like a ``helmCharts`` entry."""
    try:
        documents = list(load_yaml_documents(text))
    except ManifestError:
        return  # not YAML kustomize can use either; it reports the error itself
    for number, document in enumerate(documents):
        if not isinstance(document, dict) or document.get("kind") != _HELM_GENERATOR:
            continue
        if isinstance(document.get("configHome"), str):
            raise render_error(checkout.app, what, "configHome is not supported (Tether gives helm private homes)")
        home = document.get("chartHome") if isinstance(document.get("chartHome"), str) else None
        chart = _chart_ref(
            f"document {number + 1}", document, home or DEFAULT_CHART_HOME, ("valuesFile", "additionalValuesFiles")
        )
        for field, ref in chart.value_files:
            _local_target(checkout, directory, f"{what} {field}", ref)
        if chart.name:
            check_helm_chart(checkout, directory, what, chart)


def _scalar(value: Any) -> str:
    """A YAML scalar as the string kustomize would read (numbers as written); anything else empty."""
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        return ""
    return str(value)


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _mappings(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
