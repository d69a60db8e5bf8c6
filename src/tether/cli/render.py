"""`tether render`: print the objects an app's source produces, as Tether would apply them.

SOURCE is a git URL (resolved, fetched into the git cache, rendered from that commit) or a
local directory (its working tree, as is). Placeholders are resolved from the ``pass``
store (PASSWORD_STORE_DIR / GNUPGHOME, as for ``pass``); Secret values are masked unless
``--show-secrets``. On failure the error goes to stderr, nothing to stdout, exit code 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import click
import yaml
from pydantic import ValidationError

from tether.errors import TetherError
from tether.model.source import ApplicationSource
from tether.pipeline import DesiredState, desired_state, is_local_source
from tether.secrets import REDACTOR, PassBackend, mask_secret_objects
from tether.source import GitCache, redact_url

EXIT_ERROR = 2


def default_cache_dir() -> Path:
    """``$TETHER_CACHE_DIR``, else ``$XDG_CACHE_HOME/tether``, else ``~/.cache/tether``."""
    if os.environ.get("TETHER_CACHE_DIR"):
        return Path(os.environ["TETHER_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tether"


@click.command()
@click.argument("source")
@click.option("--revision", "-r", default=None, help="Branch, tag, commit or semver range (git sources; default HEAD).")
@click.option("--path", "-p", "app_path", default="", help="Directory of the app inside the repository.")
@click.option(
    "--type", "source_type", type=click.Choice(["directory", "helm", "kustomize"]), default=None,
    help="Render as this type instead of detecting it.",
)
@click.option("--helm-set", "helm_sets", multiple=True, metavar="KEY=VALUE", help="Helm parameter (--set); repeatable.")
@click.option("--values", "value_files", multiple=True, metavar="FILE", help="Helm values file, relative to the chart; repeatable.")
@click.option("--app", "app_name", default=None, help="Application name (Helm release name); default: the app directory's name.")
@click.option("--namespace", "-n", default=None, help="Destination namespace (Helm --namespace).")
@click.option("--output", "-o", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@click.option("--show-secrets", is_flag=True, help="Print Secret values instead of masking them.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None, help="Git cache directory (default: ~/.cache/tether).")
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
        state = asyncio.run(_desired_state(app, spec, namespace, cache_dir or default_cache_dir()))
        objects = state.objects if show_secrets else mask_secret_objects(state.objects)
        text = format_objects(objects, output)
    except TetherError as exc:
        click.echo(f"error: {REDACTOR.redact(redact_url(str(exc)))}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(text, nl=False)


def build_source(
    source: str,
    revision: str | None,
    app_path: str,
    source_type: str | None,
    helm_sets: tuple[str, ...],
    value_files: tuple[str, ...],
) -> ApplicationSource:
    """The Argo CD source spec the options describe; Helm options make it an explicit Helm source."""
    local = is_local_source(source)
    if local and revision:
        raise TetherError("--revision needs a git URL; a local directory is rendered as it is on disk")
    if (helm_sets or value_files) and source_type not in (None, "helm"):
        raise TetherError(f"--helm-set and --values need a Helm source, not --type {source_type}")
    spec: dict[str, Any] = {
        "repoURL": str(Path(source).expanduser().resolve()) if local else source,
        "path": app_path,
        "targetRevision": revision or "HEAD",
    }
    if source_type:
        spec[source_type] = {}
    if helm_sets or value_files:
        parameters = []
        for item in helm_sets:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise TetherError(f"--helm-set {item!r}: expected KEY=VALUE")
            parameters.append({"name": name, "value": value})
        spec["helm"] = {"parameters": parameters, "valueFiles": list(value_files)}
    try:
        return ApplicationSource.model_validate(spec)
    except ValidationError as exc:
        raise TetherError(f"invalid source: {exc}") from None


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


async def _desired_state(app: str, spec: ApplicationSource, namespace: str | None, cache_dir: Path) -> DesiredState:
    git = None if is_local_source(spec.repo_url) else GitCache(cache_dir / "git")
    return await desired_state(app, spec, git=git, cache=None, secrets_backend=PassBackend(), namespace=namespace)
