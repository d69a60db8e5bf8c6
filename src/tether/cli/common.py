"""What the app-level commands (render, diff, sync) share: the source options, loading the
desired state, ignoreDifferences files, and how an error ends a command."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from pydantic import ValidationError

from tether.capabilities import Capabilities, read_capabilities
from tether.cluster import Cluster, ClusterError
from tether.diff import parse_ignore_differences
from tether.errors import TetherError
from tether.model.source import ApplicationSource
from tether.paths import cache_root
from tether.pipeline import DesiredState, desired_state, is_local_source, local_repository
from tether.render.manifests import ManifestError, load_yaml
from tether.secrets import REDACTOR, PassBackend
from tether.source import GitCache, redact_url

EXIT_ERROR = 2
MAX_RULES_BYTES = 1024 * 1024
F = TypeVar("F", bound=Callable[..., Any])


def fail(exc: BaseException, app: str | None = None) -> NoReturn:
    """Print ``error: <message>`` (naming the app, redacted) on stderr and exit 2."""
    message = str(exc)
    if app and f"app {app!r}" not in message:
        message = f"app {app!r}: {message}"
    click.echo(f"error: {REDACTOR.redact(redact_url(message))}", err=True)
    sys.exit(EXIT_ERROR)


def app_destination_options(command: F) -> F:
    """SOURCE, --app, --dest-namespace, --context, --kubeconfig, --path, --revision, --ignore-differences."""
    decorators = [
        click.argument("source"),
        click.option("--app", "app", required=True, help="Application name: the owner in tracking ids."),
        click.option(
            "--dest-namespace",
            "namespace",
            required=True,
            help="Destination namespace for namespaced objects that name none.",
        ),
        click.option("--context", default=None, help="Kubeconfig context (default: the current one)."),
        click.option(
            "--kubeconfig", default=None, type=click.Path(dir_okay=False, path_type=Path), help="Kubeconfig file."
        ),
        click.option("--path", "-p", "app_path", default="", help="Directory of the app inside the repository."),
        click.option(
            "--revision", "-r", default=None, help="Branch, tag, commit or semver range (git sources; default HEAD)."
        ),
        click.option(
            "--ignore-differences",
            "rules_file",
            default=None,
            type=click.Path(dir_okay=False, path_type=Path),
            help="YAML/JSON file with an ignoreDifferences list (Argo CD format).",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def build_source(
    source: str,
    revision: str | None,
    app_path: str,
    source_type: str | None = None,
    helm_sets: tuple[str, ...] = (),
    value_files: tuple[str, ...] = (),
) -> ApplicationSource:
    """The Argo CD source spec the options describe; Helm options make it an explicit Helm source."""
    local = is_local_source(source)
    if local and revision:
        raise TetherError("--revision needs a git URL; a local directory is rendered as it is on disk")
    if (helm_sets or value_files) and source_type not in (None, "helm"):
        raise TetherError(f"--helm-set and --values need a Helm source, not --type {source_type}")
    repo_url, path = source, app_path
    if local:  # inside a git work tree, its root is the repository root (DESIGN: the command line)
        root, inside = local_repository(source)
        repo_url, path = str(root), "/".join(part for part in (inside, app_path.strip("/")) if part)
    spec: dict[str, Any] = {"repoURL": repo_url, "path": path, "targetRevision": revision or "HEAD"}
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


async def load_desired(
    app: str,
    spec: ApplicationSource,
    namespace: str | None,
    cache_dir: Path | None = None,
    capabilities: Capabilities | None = None,
) -> DesiredState:
    """Source → render → secrets for a one-shot command (git cache under the cache root; no render cache).

    ``capabilities`` are the target cluster's, for Helm (``diff`` and ``sync`` have one; ``render`` has not).
    """

    async def known() -> Capabilities:
        assert capabilities is not None
        return capabilities

    git = None if is_local_source(spec.repo_url) else GitCache((cache_dir or cache_root()) / "git")
    return await desired_state(
        app,
        spec,
        git=git,
        cache=None,
        secrets_backend=PassBackend(),
        namespace=namespace,
        capabilities=known if capabilities is not None else None,
    )


async def connect_and_load(
    app: str, spec: ApplicationSource, namespace: str | None, kubeconfig: str | None, context: str | None
) -> tuple[Cluster, DesiredState]:
    """The target cluster and the app rendered for it, with its capabilities reaching Helm.

    A render error is reported before a cluster error: a malformed manifest is the first thing
    to fix whether the cluster answers or not. The caller closes the cluster.
    """
    cluster: Cluster | None = None
    capabilities: Capabilities | None = None
    unusable: ClusterError | None = None
    try:
        cluster = await Cluster.connect(kubeconfig, context)
        capabilities = await read_capabilities(cluster)
    except ClusterError as exc:
        unusable = exc
    try:
        state = await load_desired(app, spec, namespace, capabilities=capabilities)
        if unusable is not None:
            raise unusable
    except BaseException:
        if cluster is not None:
            await cluster.close()
        raise
    assert cluster is not None  # connected, or ``unusable`` was raised
    return cluster, state


def load_rules(path: Path | None) -> list[dict[str, Any]]:
    """An ``ignoreDifferences`` list (Argo CD format) from a YAML or JSON file, checked before anything runs."""
    if path is None:
        return []
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_RULES_BYTES + 1)
    except OSError as exc:
        raise TetherError(f"--ignore-differences {path}: {exc.strerror}") from None
    if len(raw) > MAX_RULES_BYTES:
        raise TetherError(f"--ignore-differences {path}: larger than {MAX_RULES_BYTES} bytes")
    try:
        rules = load_yaml(raw.decode("utf-8")) or []  # bounded like any manifest: the file may come from a repo
    except UnicodeDecodeError as exc:
        raise TetherError(f"--ignore-differences {path}: not UTF-8 text: {exc}") from None
    except ManifestError as exc:
        raise TetherError(f"--ignore-differences {path}: {exc}") from None
    if isinstance(rules, dict) and "ignoreDifferences" in rules:
        rules = rules["ignoreDifferences"] or []
    if not isinstance(rules, list):
        raise TetherError(f"--ignore-differences {path}: expected a list of ignoreDifferences entries")
    parse_ignore_differences(rules)
    return rules
