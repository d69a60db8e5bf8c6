"""Helm charts in the repository, rendered with ``helm template`` like Argo CD does.

Never touches the network: charts must be in git, with their dependencies vendored
under ``charts/`` (no ``helm dependency build``); a declared dependency that is missing
is an error that names it. Value files, ``--set-file`` files and every symlink in the
chart must resolve inside the repository. Arguments follow Argo CD: release name =
``helm.releaseName`` or the app name; namespace = ``helm.namespace`` or the destination;
value files, then inline values (``valuesObject`` over ``values``) as the last values
file; parameters as ``--set`` (``--set-string`` with ``forceString: true``); CRDs included
unless ``skipCrds``. A value file or ``--set-file`` path written absolute (``/envs/prod.yaml``)
is relative to the repository root, as in Argo CD; any other is relative to the chart.

In a multi-source app a value file ``$<ref>/path`` is read from the repository of the source
with ``ref: <ref>``, relative to its root, under the same rules (inside that repository, must
exist unless ``ignoreMissingValueFiles``). A ``$ref`` no source defines is an InvalidSpec error.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from tether.errors import Reason
from tether.model.source import HelmSource, split_ref
from tether.render.errors import RenderError, redact, render_error
from tether.render.manifests import ManifestError, Manifests, load_yaml, source_comments
from tether.render.paths import ROOT, Checkout
from tether.render.request import RenderRequest
from tether.render.toolenv import private_tool_env, run_tool
from tether.tools import binary

_MAX_CHART_YAML = 1024 * 1024


async def render_helm(checkout: Checkout, app_dir: Path, request: RenderRequest) -> Manifests:
    """Objects of the chart in ``app_dir``, all or nothing."""
    spec = request.source.helm or HelmSource()
    where = checkout.relative(app_dir)
    if not (app_dir / "Chart.yaml").is_file():
        raise render_error(request.app, f"helm chart {where}", "no Chart.yaml in the app path")
    checkout.check_symlinks(app_dir, what=f"helm chart {where}")
    check_dependencies_vendored(checkout, app_dir)
    value_files = _value_files(checkout, app_dir, spec, request)
    file_parameters = _file_parameters(checkout, app_dir, spec, request)
    with private_tool_env() as (env, scratch):
        argv: list[str] = [
            str(binary("helm")),
            "template",
            spec.release_name or request.app,
            str(app_dir),
        ]
        namespace = spec.namespace or request.namespace
        if namespace:
            argv += ["--namespace", namespace]
        cluster = request.capabilities
        kube_version = spec.kube_version or (cluster.kube_version if cluster else "")
        if kube_version:
            argv += ["--kube-version", kube_version]
        for parameter in spec.parameters:
            argv += [parameter.set_flag, f"{parameter.name}={_escape_set_value(parameter.value)}"]
        for name, path in file_parameters:
            argv += ["--set-file", f"{name}={_escape_set_value(str(path))}"]
        for ref, value_file in value_files:
            argv += ["--values", _value_file_argument(scratch, request, ref, value_file)]
        inline = spec.inline_values()
        if inline:
            inline_file = scratch / "inline-values.yaml"
            inline_file.write_text(inline if isinstance(inline, str) else yaml.safe_dump(inline))
            argv += ["--values", str(inline_file)]
        for api_version in spec.api_versions or (cluster.api_versions if cluster else ()):
            argv += ["--api-versions", api_version]  # the spec's replace the cluster's, as in Argo CD
        if not spec.skip_crds:
            argv.append("--include-crds")
        if spec.skip_schema_validation:
            argv.append("--skip-schema-validation")
        if spec.skip_tests:
            argv.append("--skip-tests")
        return await run_tool(
            argv,
            env=env,
            cwd=scratch,
            request=request,
            what="helm template",
            where=f"helm chart {where}",
            hide=(checkout.root, *(ref.root for ref in request.refs.values())),
            file=f"{where}/Chart.yaml" if where != ROOT else "Chart.yaml",
            document_files=partial(template_files, where),
        )


def template_files(chart: str, output: str) -> list[str] | None:
    """The repository file of each document of ``helm template``'s output, from its ``# Source:`` comment.

    Helm names a template ``<chart name>/templates/x.yaml`` (``<name>/charts/<sub>/…`` for a
    subchart); the chart's directory in the repository, ``chart``, takes the name's place.
    """
    comments = source_comments(output)
    if comments is None:
        return None
    return [posixpath.normpath(posixpath.join(chart, c.partition("/")[2])) if c else "" for c in comments]


def check_dependencies_vendored(checkout: Checkout, chart_dir: Path) -> None:
    """Refuse a chart whose declared dependencies are not under ``charts/`` (we never download)."""
    where = checkout.relative(chart_dir)
    chart = _read_yaml(checkout, chart_dir / "Chart.yaml")
    declared = chart.get("dependencies") or []
    requirements = chart_dir / "requirements.yaml"
    if not declared and requirements.is_file():
        declared = _read_yaml(checkout, requirements).get("dependencies") or []
    if not declared:
        return
    vendored = vendored_chart_names(chart_dir / "charts")
    missing = [
        f"{dep.get('name')} {dep.get('version', '')} from {dep.get('repository', '?')}".replace("  ", " ")
        for dep in declared
        if isinstance(dep, dict) and dep.get("name") not in vendored
    ]
    if missing:
        raise render_error(
            checkout.app,
            f"helm chart {where}",
            "dependencies not vendored under charts/ (Tether never downloads charts; "
            "run `helm dependency build` and commit charts/): " + ", ".join(missing),
        )


def vendored_chart_names(charts_dir: Path) -> set[str]:
    """Names of the charts in a ``charts/`` directory: unpacked directories and ``.tgz`` archives."""
    names: set[str] = set()
    if not charts_dir.is_dir():
        return names
    for entry in sorted(charts_dir.iterdir()):
        if entry.is_dir() and (entry / "Chart.yaml").is_file():
            names.add(str(_safe_yaml(entry / "Chart.yaml").get("name", "")))
        elif entry.is_file() and entry.name.endswith((".tgz", ".tar.gz")):
            names.add(_archived_chart_name(entry))
    names.discard("")
    return names


def _archived_chart_name(archive: Path) -> str:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "Chart.yaml" and member.isfile() and member.size <= _MAX_CHART_YAML:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        data = load_yaml(io.TextIOWrapper(handle, encoding="utf-8").read())
                        return str(data.get("name", "")) if isinstance(data, dict) else ""
    except (OSError, tarfile.TarError, ManifestError, UnicodeDecodeError):
        return ""
    return ""


def _value_files(
    checkout: Checkout, chart_dir: Path, spec: HelmSource, request: RenderRequest
) -> list[tuple[str | None, Path]]:
    """(ref name or None for the chart's repository, real path) of each value file that applies."""
    paths: list[tuple[str | None, Path]] = []
    for index, ref in enumerate(spec.value_files):
        what = f"{request.field_prefix}helm.valueFiles[{index}]"
        if "://" in ref:
            raise render_error(checkout.app, what, f"{ref!r}: remote value files are not supported")
        name, where, base, relative = _value_file_base(checkout, chart_dir, ref, request, what)
        path = where.resolve(base, relative, what=what, must_exist=not spec.ignore_missing_value_files, shown=ref)
        if path is None:
            continue
        if not path.is_file():
            raise render_error(checkout.app, what, f"{ref!r} is not a file")
        paths.append((name, path))
    return paths


def _value_file_argument(scratch: Path, request: RenderRequest, name: str | None, path: Path) -> str:
    """``--values`` argument: the path, or for a ref file ``$<ref>/<path>`` through a link in the scratch directory.

    Helm runs in ``scratch``, so its messages then say ``$values/envs/prod.yaml``, as the spec
    does, rather than a temporary checkout path that would be stripped to an ambiguous one.
    """
    if name is None:
        return str(path)
    ref = request.refs[name]
    link = scratch / f"${name}"
    if not link.is_symlink():
        link.symlink_to(ref.root, target_is_directory=True)
    return f"${name}/{ref.relative(path)}"


def _value_file_base(
    checkout: Checkout, chart_dir: Path, ref: str, request: RenderRequest, what: str
) -> tuple[str | None, Checkout, Path, str]:
    """(ref name, the checkout a value file is read from, where its path starts): a ``$ref`` root or ``_base``."""
    found = split_ref(ref)
    if found is None:
        return (None, checkout, *_base(checkout, chart_dir, ref))
    name, rest = found
    source = request.refs.get(name)
    if source is None:
        raise invalid_spec(checkout.app, what, f"{ref!r} names ${name}, but no source has ref: {name}")
    if not rest:
        raise render_error(checkout.app, what, f"{ref!r} must name a file in the repository of ref source {name!r}")
    return name, source, source.root, "./" + rest


def invalid_spec(app: str, what: str, detail: str) -> RenderError:
    """A render error the user must fix in the spec (reason InvalidSpec): retrying cannot help."""
    return RenderError(redact(f"{what}: {detail}"), reason=Reason.INVALID_SPEC).for_app(app)


def _file_parameters(
    checkout: Checkout, chart_dir: Path, spec: HelmSource, request: RenderRequest
) -> list[tuple[str, Path]]:
    resolved: list[tuple[str, Path]] = []
    for index, parameter in enumerate(spec.file_parameters):
        what = f"{request.field_prefix}helm.fileParameters[{index}].path"
        if split_ref(parameter.path) is not None:
            raise invalid_spec(checkout.app, what, f"{parameter.path!r}: a $ref is only supported in helm.valueFiles")
        base, relative = _base(checkout, chart_dir, parameter.path)
        path = checkout.resolve(base, relative, what=what, shown=parameter.path)
        assert path is not None
        if not path.is_file():
            raise render_error(checkout.app, what, f"{parameter.path!r} is not a file")
        resolved.append((parameter.name, path))
    return resolved


def _base(checkout: Checkout, chart_dir: Path, ref: str) -> tuple[Path, str]:
    """Where ``ref`` starts: the repository root for ``/…`` (Argo CD's rule), else the chart.

    The result still goes through ``Checkout.resolve``, so ``/../x`` leaves the repository and is refused.
    """
    if ref.startswith("/") and not ref.startswith("//"):
        return checkout.root, "./" + ref.lstrip("/")
    return chart_dir, ref


def _escape_set_value(value: str) -> str:
    """Argo CD's rule: escape unescaped commas, except in a ``{a,b}`` list value."""
    if value.startswith("{") and value.endswith("}"):
        return value
    out: list[str] = []
    for i, char in enumerate(value):
        if char == "," and (i == 0 or value[i - 1] != "\\"):
            out.append("\\,")
        else:
            out.append(char)
    return "".join(out)


def _read_yaml(checkout: Checkout, path: Path) -> dict[str, Any]:
    try:
        data = load_yaml(checkout.read_text(path, what=checkout.relative(path)))
    except ManifestError as exc:
        raise render_error(checkout.app, checkout.relative(path), str(exc)) from None
    if not isinstance(data, dict):
        raise render_error(checkout.app, checkout.relative(path), "must be a YAML mapping")
    return data


def _safe_yaml(path: Path) -> dict[str, Any]:
    try:
        data = load_yaml(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ManifestError):
        return {}
    return data if isinstance(data, dict) else {}
