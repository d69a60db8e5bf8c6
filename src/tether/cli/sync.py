"""`tether sync`: render an app's source and sync it into a cluster, wave by wave.

Progress goes to stderr as it happens; the result table, the overall outcome and the app's
health (over the live objects, after the sync) go to stdout — always, whatever the outcome,
so what a sync managed to apply before a failure or an outage is never lost. Errors go to
stderr. Exit code 0 when the sync succeeded, 1 when it failed (an object, a hook, a wait,
or a refusal), 2 when it could not run or ended in Error (bad source, bad kubeconfig, the
cluster unreachable or gone mid-sync).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from tether.cli.common import EXIT_ERROR, app_destination_options, build_source, connect_and_load, fail, load_rules
from tether.cluster import Cluster, ClusterError, UnknownKind
from tether.diff import assign_namespaces
from tether.errors import TetherError
from tether.health import AppHealth, HealthStatus, app_health
from tether.secrets import REDACTOR
from tether.sync import (
    OperationPhase,
    ResourceAction,
    SyncEvent,
    SyncOptions,
    SyncResult,
    is_hook,
    sync_app,
)
from tether.sync.operation import OperationState
from tether.sync.options import Selector

EXIT_FAILED = 1


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
            r.phase.value,
            str(r.wave),
            r.kind,
            r.namespace or "-",
            r.name,
            r.action.value,
            r.hook_phase.value if r.hook_phase is not None else r.status.value,
            r.health or "-",
            r.message,
        )
        for r in result.resources
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1] for row in rows
    )


async def live_health(cluster: Cluster, desired: list[dict[str, Any]], namespace: str) -> AppHealth:
    """The app's health now, over the live copies of its desired objects (hooks excluded)."""
    placed = await assign_namespaces([o for o in desired if not is_hook(o)], cluster=cluster, namespace=namespace)

    async def live_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
        meta = obj.get("metadata") or {}
        try:
            return await cluster.get(obj["apiVersion"], obj["kind"], meta.get("name", ""), meta.get("namespace"))
        except UnknownKind:
            return None

    return await app_health(placed, live_of)


def read_state(path: Path | None, app: str) -> OperationState | None:
    """The operation saved in ``path`` if it is this app's and still running (to resume), else None."""
    if path is None or not path.exists():
        return None
    try:
        state = OperationState.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise TetherError(f"app {app!r}: cannot read the sync state file {path}: {exc}") from None
    if state.app != app or not state.running:
        return None
    return state


def state_writer(path: Path) -> Callable[[OperationState], None]:
    """An ``on_state`` callback that replaces ``path`` atomically with each new state (no secrets in it)."""

    def write(state: OperationState) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(state.to_dict()))
        os.replace(tmp, path)

    return write


async def _run(
    source: str,
    revision: str | None,
    app_path: str,
    app: str,
    namespace: str,
    kubeconfig: str | None,
    context: str | None,
    options: SyncOptions,
    quiet: bool,
    state_file: Path | None = None,
) -> tuple[SyncResult, HealthStatus | None, list[str]]:
    resume = read_state(state_file, app)
    cluster, state = await connect_and_load(
        app, build_source(source, revision, app_path), namespace, kubeconfig, context
    )
    options = replace(options, revision=state.revision or "")
    if resume is not None:
        _say(f"resuming the sync started at {resume.started_at} (run {resume.run_id})")
    async with cluster:
        result = await sync_app(
            app,
            state.objects,
            cluster=cluster,
            options=options,
            progress=None if quiet else _show_progress,
            on_state=state_writer(state_file) if state_file is not None else None,
            resume=resume,
            origins=state.origins,
        )
        if result.phase is OperationPhase.ERROR:
            return result, None, []
        try:
            health = await live_health(cluster, state.objects, namespace)
        except ClusterError as exc:
            # The sync's result stands; only the health read afterwards failed.
            _say(f"warning: app {app!r}: cannot read the app's health after the sync: {exc}")
            return result, None, []
    return result, health.status, list(health.problems)


@click.command()
@app_destination_options
@click.option("--prune", is_flag=True, help="Delete objects of this app that git no longer has.")
@click.option(
    "--dry-run", is_flag=True, help="Validate everything server-side and report what would happen; write nothing."
)
@click.option(
    "--timeout", type=float, default=300.0, show_default=True, help="Seconds for each wait (a wave's health, a hook)."
)
@click.option(
    "--sync-option",
    "sync_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Argo CD sync option, e.g. CreateNamespace=true, ApplyOutOfSyncOnly=true; repeatable.",
)
@click.option(
    "--resource",
    "resources",
    multiple=True,
    metavar="GROUP:KIND:[NAMESPACE/]NAME",
    help="Selective sync: only these objects, and no hooks; repeatable.",
)
@click.option(
    "--allow-empty", is_flag=True, help="With --prune, allow an empty desired state to delete every object of the app."
)
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Save the sync's state here as it runs; if it holds a sync of this app still running "
    "(the process was killed), resume that sync instead of starting a new one.",
)
def sync(
    source: str,
    app: str,
    namespace: str,
    context: str | None,
    kubeconfig: Path | None,
    app_path: str,
    revision: str | None,
    prune: bool,
    dry_run: bool,
    timeout: float,
    sync_options: tuple[str, ...],
    resources: tuple[str, ...],
    rules_file: Path | None,
    allow_empty: bool,
    output: str,
    quiet: bool,
    state_file: Path | None,
) -> None:
    """Sync SOURCE (a git URL or a local directory) into a cluster as app APP."""
    try:
        options = SyncOptions.from_strings(
            sync_options,
            namespace=namespace,
            prune=prune,
            dry_run=dry_run,
            timeout=timeout,
            allow_empty=allow_empty,
            resources=tuple(Selector.parse(r) for r in resources) if resources else None,
            ignore_differences=tuple(load_rules(rules_file)),
        )
        result, health, problems = asyncio.run(
            _run(
                source,
                revision,
                app_path,
                app,
                namespace,
                str(kubeconfig) if kubeconfig else None,
                context,
                options,
                quiet,
                state_file,
            )
        )
    except TetherError as exc:
        fail(exc, app)
    if output == "json":
        data = result.to_dict()
        data["health"] = health.value if health is not None else None
        click.echo(REDACTOR.redact(json.dumps(REDACTOR.redact_any(data), indent=2)))
    else:
        if result.resources:
            click.echo(REDACTOR.redact(result_table(result)))
            click.echo()
        reason = f" ({result.reason})" if result.reason else ""
        dry = " (dry run)" if result.dry_run else ""
        click.echo(REDACTOR.redact(f"Sync:   {result.phase.value}{reason}{dry} — {result.message}"))
        if health is not None:
            click.echo(f"Health: {health.value}")
            for line in problems:
                click.echo(REDACTOR.redact(f"  {line}"))
        changed = sum(
            1
            for r in result.resources
            if r.action in (ResourceAction.CREATED, ResourceAction.CONFIGURED, ResourceAction.PRUNED)
        )
        verb = "would change" if result.dry_run else "changed"
        click.echo(
            f"Took:   {(result.finished_at - result.started_at).total_seconds():.1f}s, {changed} object(s) {verb}"
        )
    if result.phase is OperationPhase.ERROR:
        _say(f"error: {result.reason + ': ' if result.reason else ''}{result.message}")
        sys.exit(EXIT_ERROR)
    if result.phase is not OperationPhase.SUCCEEDED:
        sys.exit(EXIT_FAILED)
