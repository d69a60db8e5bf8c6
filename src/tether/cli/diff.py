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

from tether.cli.common import app_destination_options, build_source, connect_and_load, fail, load_rules
from tether.cluster import LiveCache
from tether.diff import AppDiff, diff_app
from tether.diff.jq import DEFAULT_TIMEOUT
from tether.errors import TetherError
from tether.secrets import REDACTOR

EXIT_DIFFERS = 1


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
    source: str,
    revision: str | None,
    app_path: str,
    app: str,
    namespace: str,
    kubeconfig: str | None,
    context: str | None,
    rules: list[dict[str, Any]],
    jq_timeout: float,
) -> AppDiff:
    cluster, state = await connect_and_load(
        app, build_source(source, revision, app_path), namespace, kubeconfig, context
    )
    async with cluster, LiveCache(cluster) as cache:
        await cache.track_all()  # so leftovers of kinds git no longer has show as Extraneous
        return await diff_app(
            app,
            state.objects,
            cluster=cluster,
            cache=cache,
            ignore_differences=rules,
            namespace=namespace,
            jq_timeout=jq_timeout,
            origins=state.origins,
        )


@click.command()
@app_destination_options
@click.option(
    "--jq-timeout",
    type=float,
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds each jqPathExpressions evaluation may run.",
)
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
def diff(
    source: str,
    app: str,
    namespace: str,
    context: str | None,
    kubeconfig: Path | None,
    app_path: str,
    revision: str | None,
    rules_file: Path | None,
    jq_timeout: float,
    output: str,
) -> None:
    """Show how the cluster differs from SOURCE (a git URL or a local directory) for app APP."""
    try:
        rules = load_rules(rules_file)
        report = asyncio.run(
            _run(
                source,
                revision,
                app_path,
                app,
                namespace,
                str(kubeconfig) if kubeconfig else None,
                context,
                rules,
                jq_timeout,
            )
        )
    except TetherError as exc:
        fail(exc, app)
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
