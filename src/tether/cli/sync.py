"""`tether sync`: render an app's source and sync it into a cluster, wave by wave.

Progress goes to stderr as it happens; the result table, the overall outcome and the app's
health (over the live objects, after the sync) go to stdout. Exit code 0 when the sync
succeeded, 1 when it failed (an object, a hook, a wait, or a refusal), 2 when it could
not run (bad source, unreachable cluster, error).
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from tether.cli.diff import load_rules
from tether.cli.render import build_source, default_cache_dir
from tether.cluster import Cluster, ClusterError, UnknownKind
from tether.errors import TetherError
from tether.health import Health, HealthStatus, aggregate, assess
from tether.pipeline import desired_state, is_local_source
from tether.secrets import REDACTOR, PassBackend
from tether.source import GitCache, redact_url
from tether.sync import (
    OperationPhase,
    ResourceAction,
    SyncEvent,
    SyncOptions,
    SyncResult,
    is_hook,
    sync_app,
)
from tether.sync.options import Selector

EXIT_FAILED, EXIT_ERROR = 1, 2


def _say(line: str) -> None:
    click.echo(REDACTOR.redact(line), err=True)


def _show_progress(event: SyncEvent) -> None:
    if event.type == "step":
        _say(f"» {event.message}")
    elif event.type == "waiting":
        _say(f"  … {event.message}")
    elif event.type == "resource" and event.resource is not None:
        r = event.resource
        where = f"{r.namespace}/" if r.namespace else ""
        state = r.hook_phase.value if r.hook_phase is not None else r.status.value
        _say(f"  {r.action.value:<12} {r.kind} {where}{r.name}: {state}{' — ' + r.message if r.message else ''}")


def result_table(result: SyncResult) -> str:
    """The per-object result as aligned columns."""
    header = ("PHASE", "WAVE", "KIND", "NAMESPACE", "NAME", "ACTION", "STATUS", "HEALTH", "MESSAGE")
    rows = [header] + [
        (
            r.phase.value, str(r.wave), r.kind, r.namespace or "-", r.name, r.action.value,
            r.hook_phase.value if r.hook_phase is not None else r.status.value, r.health or "-", r.message,
        )
        for r in result.resources
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
                     for row in rows)


async def app_health(cluster: Cluster, desired: list[dict[str, Any]], namespace: str) -> tuple[HealthStatus, list[str]]:
    """The app's health now: ``tether.health.aggregate`` over the live desired objects (absent ones are Missing)."""
    healths: list[Health | None] = []
    problems: list[str] = []
    for obj in desired:
        if is_hook(obj):
            continue
        meta = obj.get("metadata") or {}
        try:
            info = await cluster.resource(obj["apiVersion"], obj["kind"])
            ns = (meta.get("namespace") or namespace) if info.namespaced else None
            live = await cluster.get(obj["apiVersion"], obj["kind"], meta.get("name", ""), ns)
        except UnknownKind:
            live = None
        health = Health(HealthStatus.MISSING, "not found") if live is None else assess(live)
        healths.append(health)
        if health is not None and health.status is not HealthStatus.HEALTHY:
            detail = f" — {health.message}" if health.message else ""
            problems.append(f"{obj['kind']} {meta.get('name')}: {health.status}{detail}")
    return aggregate(healths), problems


async def _run(
    source: str, revision: str | None, app_path: str, app: str, namespace: str, kubeconfig: str | None,
    context: str | None, options: SyncOptions, quiet: bool,
) -> tuple[SyncResult, HealthStatus | None, list[str]]:
    spec = build_source(source, revision, app_path, None, (), ())
    git = None if is_local_source(spec.repo_url) else GitCache(default_cache_dir() / "git")
    state = await desired_state(app, spec, git=git, cache=None, secrets_backend=PassBackend(), namespace=namespace)
    options = replace(options, revision=state.revision or "")
    cluster = await Cluster.connect(kubeconfig, context)
    async with cluster:
        result = await sync_app(app, state.objects, cluster=cluster, options=options,
                                progress=None if quiet else _show_progress)
        if result.phase is OperationPhase.ERROR:
            return result, None, []
        status, problems = await app_health(cluster, state.objects, namespace)
    return result, status, problems


@click.command()
@click.argument("source")
@click.option("--app", "app", required=True, help="Application name: the owner in tracking ids.")
@click.option("--dest-namespace", "namespace", required=True, help="Destination namespace for namespaced objects that name none.")
@click.option("--context", default=None, help="Kubeconfig context (default: the current one).")
@click.option("--kubeconfig", default=None, type=click.Path(dir_okay=False, path_type=Path), help="Kubeconfig file.")
@click.option("--path", "-p", "app_path", default="", help="Directory of the app inside the repository.")
@click.option("--revision", "-r", default=None, help="Branch, tag, commit or semver range (git sources; default HEAD).")
@click.option("--prune", is_flag=True, help="Delete objects of this app that git no longer has.")
@click.option("--dry-run", is_flag=True, help="Validate everything server-side and report what would happen; write nothing.")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds for each wait (a wave's health, a hook).")
@click.option("--sync-option", "sync_options", multiple=True, metavar="KEY=VALUE",
              help="Argo CD sync option, e.g. CreateNamespace=true, ApplyOutOfSyncOnly=true; repeatable.")
@click.option("--resource", "resources", multiple=True, metavar="GROUP:KIND:[NAMESPACE/]NAME",
              help="Selective sync: only these objects, and no hooks; repeatable.")
@click.option("--ignore-differences", "rules_file", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="ignoreDifferences rules (YAML list, Argo CD format) for ApplyOutOfSyncOnly, RespectIgnoreDifferences "
                   "and the dry-run report.")
@click.option("--allow-empty", is_flag=True, help="With --prune, allow an empty desired state to delete every object of the app.")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
def sync(
    source: str, app: str, namespace: str, context: str | None, kubeconfig: Path | None, app_path: str,
    revision: str | None, prune: bool, dry_run: bool, timeout: float, sync_options: tuple[str, ...],
    resources: tuple[str, ...], rules_file: Path | None, allow_empty: bool, output: str, quiet: bool,
) -> None:
    """Sync SOURCE (a git URL or a local directory) into a cluster as app APP."""
    try:
        options = SyncOptions.from_strings(
            sync_options, namespace=namespace, prune=prune, dry_run=dry_run, timeout=timeout, allow_empty=allow_empty,
            resources=tuple(Selector.parse(r) for r in resources) if resources else None,
            ignore_differences=tuple(load_rules(rules_file)),
        )
        result, health, problems = asyncio.run(_run(
            source, revision, app_path, app, namespace, str(kubeconfig) if kubeconfig else None, context, options, quiet,
        ))
    except (TetherError, ClusterError) as exc:
        click.echo(f"error: {REDACTOR.redact(redact_url(str(exc)))}", err=True)
        sys.exit(EXIT_ERROR)
    if output == "json":
        data = result.to_dict()
        data["health"] = health.value if health is not None else None
        click.echo(REDACTOR.redact(json.dumps(data, indent=2)))
    else:
        if result.resources:
            click.echo(REDACTOR.redact(result_table(result)))
            click.echo()
        click.echo(REDACTOR.redact(f"Sync:   {result.phase.value}{' (dry run)' if result.dry_run else ''} — {result.message}"))
        if health is not None:
            click.echo(f"Health: {health.value}")
            for line in problems:
                click.echo(REDACTOR.redact(f"  {line}"))
        changed = sum(1 for r in result.resources if r.action in (ResourceAction.CREATED, ResourceAction.CONFIGURED,
                                                                   ResourceAction.PRUNED))
        verb = "would change" if result.dry_run else "changed"
        click.echo(f"Took:   {(result.finished_at - result.started_at).total_seconds():.1f}s, {changed} object(s) {verb}")
    if result.phase is OperationPhase.ERROR:
        sys.exit(EXIT_ERROR)
    if result.phase is not OperationPhase.SUCCEEDED:
        sys.exit(EXIT_FAILED)
