"""`tether diff`: how far a cluster is from an app's source, without changing anything.

SOURCE is a git URL or a local directory, rendered with secrets resolved (in memory) as
``tether sync`` would apply it. Each object is compared server-side (a dry-run apply);
every kind the cluster serves is searched for objects this app owns that git no longer
has (Extraneous). Secret values are always masked. Exit code 0 when in sync, 1 when it
differs, 2 when the diff could not be made (the message, naming the app, on stderr).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from tether.cli.render import build_source, default_cache_dir
from tether.cluster import Cluster, LiveCache
from tether.diff import AppDiff, diff_app, parse_ignore_differences
from tether.diff.jq import DEFAULT_TIMEOUT
from tether.errors import TetherError
from tether.pipeline import desired_state, is_local_source
from tether.secrets import REDACTOR, PassBackend
from tether.source import GitCache, redact_url

EXIT_DIFFERS, EXIT_ERROR = 1, 2
MAX_RULES_BYTES = 1024 * 1024


def load_rules(path: Path | None) -> list[dict[str, Any]]:
    """An ``ignoreDifferences`` list (Argo CD format) from a YAML or JSON file."""
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
        rules = yaml.safe_load(raw) or []
    except yaml.YAMLError as exc:
        raise TetherError(f"--ignore-differences {path}: not YAML: {exc}") from None
    if isinstance(rules, dict) and "ignoreDifferences" in rules:
        rules = rules["ignoreDifferences"] or []
    if not isinstance(rules, list):
        raise TetherError(f"--ignore-differences {path}: expected a list of ignoreDifferences entries")
    parse_ignore_differences(rules)  # report a bad rule before anything else runs
    return rules


def summary(report: AppDiff) -> str:
    drifting = len(report.out_of_sync)
    if report.in_sync:
        return f"App {report.app}: Synced ({len(report.resources)} object(s))"
    counts: dict[str, int] = {}
    for r in report.out_of_sync:
        counts[r.status] = counts.get(r.status, 0) + 1
    detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return f"App {report.app}: OutOfSync ({drifting} of {len(report.resources)} object(s) differ: {detail})"


async def _run(
    source: str, revision: str | None, app_path: str, app: str, namespace: str, kubeconfig: str | None,
    context: str | None, rules: list[dict[str, Any]], jq_timeout: float,
) -> AppDiff:
    spec = build_source(source, revision, app_path, None, (), ())
    git = None if is_local_source(spec.repo_url) else GitCache(default_cache_dir() / "git")
    state = await desired_state(app, spec, git=git, cache=None, secrets_backend=PassBackend(), namespace=namespace)
    async with await Cluster.connect(kubeconfig, context) as cluster, LiveCache(cluster) as cache:
        await cache.track_all()  # so leftovers of kinds git no longer has show as Extraneous
        return await diff_app(
            app, state.objects, cluster=cluster, cache=cache, ignore_differences=rules,
            namespace=namespace, jq_timeout=jq_timeout,
        )


def _error(app: str, exc: BaseException) -> None:
    message = str(exc)
    if f"app {app!r}" not in message:
        message = f"app {app!r}: {message}"
    click.echo(f"error: {REDACTOR.redact(redact_url(message))}", err=True)
    sys.exit(EXIT_ERROR)


@click.command()
@click.argument("source")
@click.option("--app", "app", required=True, help="Application name: the owner in tracking ids.")
@click.option("--dest-namespace", "namespace", required=True, help="Destination namespace for namespaced objects that name none.")
@click.option("--context", default=None, help="Kubeconfig context (default: the current one).")
@click.option("--kubeconfig", default=None, type=click.Path(dir_okay=False, path_type=Path), help="Kubeconfig file.")
@click.option("--path", "-p", "app_path", default="", help="Directory of the app inside the repository.")
@click.option("--revision", "-r", default=None, help="Branch, tag, commit or semver range (git sources; default HEAD).")
@click.option("--ignore-differences", "rules_file", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="YAML/JSON file with an ignoreDifferences list (Argo CD format).")
@click.option("--jq-timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds each jqPathExpressions evaluation may run.")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
def diff(
    source: str, app: str, namespace: str, context: str | None, kubeconfig: Path | None, app_path: str,
    revision: str | None, rules_file: Path | None, jq_timeout: float, output: str,
) -> None:
    """Show how the cluster differs from SOURCE (a git URL or a local directory) for app APP."""
    try:
        rules = load_rules(rules_file)
        report = asyncio.run(_run(
            source, revision, app_path, app, namespace, str(kubeconfig) if kubeconfig else None, context,
            rules, jq_timeout,
        ))
    except TetherError as exc:
        _error(app, exc)
        return
    for problem in report.errors:
        click.echo(REDACTOR.redact(f"warning: app {app!r}: {problem}"), err=True)
    if output == "json":
        click.echo(REDACTOR.redact(json.dumps(report.to_dict(), indent=2)))
    else:
        text = report.text()
        if text:
            click.echo(REDACTOR.redact(text))
        click.echo(REDACTOR.redact(summary(report)))
    if not report.in_sync:
        sys.exit(EXIT_DIFFERS)
