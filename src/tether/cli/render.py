"""`tether render`: print the objects an app's source produces, as Tether would apply them.

SOURCE is a git URL (resolved, fetched into the git cache, rendered from that commit) or a
local directory (its working tree, as is). Placeholders are resolved from the ``pass``
store (PASSWORD_STORE_DIR / GNUPGHOME, as for ``pass``). Unless ``--show-secrets``, Secret
values are masked and so is every resolved value wherever else it landed (a ConfigMap, an
env var), since output like this ends up in terminals and CI logs. On failure the error
goes to stderr, nothing to stdout, exit code 2.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path, PurePosixPath
from typing import Any

import click
import yaml

from tether.cli.common import build_source, fail, load_desired
from tether.errors import TetherError
from tether.model.source import ApplicationSource
from tether.secrets import REDACTOR, mask_secret_objects


@click.command()
@click.argument("source")
@click.option("--revision", "-r", default=None, help="Branch, tag, commit or semver range (git sources; default HEAD).")
@click.option("--path", "-p", "app_path", default="", help="Directory of the app inside the repository.")
@click.option(
    "--type",
    "source_type",
    type=click.Choice(["directory", "helm", "kustomize"]),
    default=None,
    help="Render as this type instead of detecting it.",
)
@click.option(
    "--helm-set",
    "helm_sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Helm parameter (--set, typed, as helm.parameters); repeatable.",
)
@click.option(
    "--values",
    "value_files",
    multiple=True,
    metavar="FILE",
    help="Helm values file, relative to the chart; repeatable.",
)
@click.option(
    "--app", "app_name", default=None, help="Application name (Helm release name); default: the app directory's name."
)
@click.option("--namespace", "-n", default=None, help="Destination namespace (Helm --namespace).")
@click.option("--output", "-o", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@click.option("--show-secrets", is_flag=True, help="Print secret values instead of masking them.")
@click.option(
    "--cache-dir", type=click.Path(path_type=Path), default=None, help="Git cache directory (default: ~/.cache/tether)."
)
def render(
    source: str,
    revision: str | None,
    app_path: str,
    source_type: str | None,
    helm_sets: tuple[str, ...],
    value_files: tuple[str, ...],
    app_name: str | None,
    namespace: str | None,
    output: str,
    show_secrets: bool,
    cache_dir: Path | None,
) -> None:
    """Render SOURCE (a git URL or a local directory) and print its objects."""
    try:
        spec = build_source(source, revision, app_path, source_type, helm_sets, value_files)
        app = app_name or default_app_name(spec)
        state = asyncio.run(load_desired(app, spec, namespace, cache_dir))
        objects = state.objects if show_secrets else REDACTOR.redact_any(mask_secret_objects(state.objects))
        text = format_objects(objects, output)
    except TetherError as exc:
        fail(exc)
    click.echo(text, nl=False)


def default_app_name(spec: ApplicationSource) -> str:
    """The app directory's name, or the repository's when the app is at its root."""
    path = PurePosixPath(spec.path.strip("/")) if spec.path.strip("/") else None
    if path is not None and path.name not in ("", "."):
        return path.name
    tail = spec.repo_url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return tail.removesuffix(".git") or "app"


def format_objects(objects: list[dict[str, Any]], output: str) -> str:
    if output == "json":
        return json.dumps(objects, indent=2) + "\n"
    if not objects:
        return ""
    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False)
