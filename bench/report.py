"""Refresh the generated part of docs/benchmarks.md from bench/results/*.json (and results/before/).

``python -m bench.report`` — also run at the end of ``make bench``. Only the text between the
``<!-- bench:begin -->`` and ``<!-- bench:end -->`` markers is replaced; the prose around it stays.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.common import REPO, RESULTS

DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
# The table at the top of issue 8, measured before this work by the issue's author:
# (Tether s, kubectl s) for the two syncs, and the diff command's seconds.
ISSUE_FIRST_SYNC = (33.0, 12.4)
ISSUE_NO_CHANGE_SYNC = (25.0, 1.8)
ISSUE_DIFF = 9.4


def _load(directory: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text())
        out[data["name"]] = data
    return out


def _s(fig: Mapping[str, Any] | None, digits: int = 2) -> str:
    if not fig:
        return "—"
    return f"{fig['median']:.{digits}f}"


def _range(fig: Mapping[str, Any] | None, digits: int = 2) -> str:
    if not fig:
        return "—"
    return f"{fig['median']:.{digits}f} ({fig['min']:.{digits}f}–{fig['max']:.{digits}f}, n={len(fig['samples'])})"


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _verdict(value: float | None, target: float | None) -> str:
    if value is None or target is None:
        return "—"
    if value <= target:
        return f"met (≤ {target:g})"
    return f"**missed** by {value / target:.2f}× (target ≤ {target:g})"


def _commit(data: Mapping[str, Any]) -> str:
    c = data.get("commit", {})
    dirty = c.get("uncommitted_files_in_src", 0)
    return f"`{c.get('sha', '?')[:12]}`" + (f" + {dirty} uncommitted file(s) in src/" if dirty else "")


def _writes(entry: Mapping[str, Any]) -> str:
    server = entry.get("requests", {}).get("apiserver", {})
    if isinstance(server, list):  # E3 files of the first runs: the in-process samples only
        server = {"inprocess": server}
    out = []
    for variant in ("inprocess", "command", "kubectl"):
        rows = server.get(variant) or []
        if rows:
            w = sorted(r["writes"] for r in rows)[len(rows) // 2]
            d = sorted(r["dry_runs"] for r in rows)[len(rows) // 2]
            out.append((variant, w, d))
    return "; ".join(f"{v}: {w} writes + {d} dry runs" for v, w, d in out)


def _tether_counted(entry: Mapping[str, Any]) -> str:
    rows = entry.get("requests", {}).get("tether_inprocess_counted_by_bench") or []
    if not rows:
        return "—"
    mid = rows[len(rows) // 2]
    return f"{mid['writes']} writes ({mid['dry_runs']} of them dry runs) of {mid['total']} requests: {mid['by_method']}"


def _engine_counted(entry: Mapping[str, Any]) -> str:
    rows = entry.get("requests", {}).get("tether_inprocess_engine_counters") or []
    rows = [r for r in rows if r not in (None, {}, [])]
    if not rows:
        return "not available at this commit (counted by the harness instead)"
    return f"`{json.dumps(rows[len(rows) // 2], sort_keys=True)}`"


def _headline(after: dict[str, Any], before: dict[str, Any]) -> list[str]:
    lines = [
        "### Issue 8's table: before and after",
        "",
        "100 apps in Flux's shape (400 objects). *Issue* is the table at the top of issue 8; *before* is the",
        "same harness run on the commit this work started from; *after* is the latest `make bench`.",
        "kubectl's figure is measured in the same run as the Tether figure beside it.",
        "",
        "| | issue (Tether / kubectl) | before: Tether / kubectl | after: Tether / kubectl |",
        "|---|---|---|---|",
    ]

    def pair(data: Mapping[str, Any] | None, variant: str) -> str:
        if not data:
            return "not measured"
        fig, base = data["figures"].get(variant), data["baseline"].get("kubectl")
        return f"{_s(fig, 1)} s / {_s(base, 1)} s ({_x(data['ratios'].get(variant))})"

    e1a, e1b = after.get("e1-first-sync-n100"), before.get("e1-first-sync-n100")
    e2a, e2b = after.get("e2-no-change-sync-n100"), before.get("e2-no-change-sync-n100")
    e3a, e3b = after.get("e3-no-change-diff-n100"), before.get("e3-no-change-diff-n100")
    f1, k1 = ISSUE_FIRST_SYNC
    f2, k2 = ISSUE_NO_CHANGE_SYNC
    lines += [
        f"| first sync until Available, `tether sync` command | {f1} s / {k1} s | {pair(e1b, 'command')} | {pair(e1a, 'command')} |",
        f"| first sync, in-process (`sync_app` × 100) | — | {pair(e1b, 'inprocess')} | {pair(e1a, 'inprocess')} |",
        f"| no-change sync, `tether sync` command | {f2} s / {k2} s | {pair(e2b, 'command')} | {pair(e2a, 'command')} |",
        f"| no-change sync, in-process, warm cache | — | {pair(e2b, 'inprocess')} | {pair(e2a, 'inprocess')} |",
        f"| `tether diff` command, nothing changed | {ISSUE_DIFF} s | "
        f"{_s(e3b['figures'].get('command') if e3b else None, 1)} s | {_s(e3a['figures'].get('command') if e3a else None, 1)} s |",
        f"| diff in-process, one warm LiveCache | — | {_s(e3b['figures'].get('inprocess') if e3b else None, 3)} s | "
        f"{_s(e3a['figures'].get('inprocess') if e3a else None, 3)} s |",
        f"| writes in a no-change sync (API server count) | 400 dry runs + 400 applies | {_writes(e2b) if e2b else '—'} | {_writes(e2a) if e2a else '—'} |",
        "",
        f"Before: {_commit(e1b) if e1b else '—'}. After: {_commit(e1a) if e1a else '—'}.",
        "",
    ]
    return lines


def _sync_tables(data: dict[str, Any], label: str) -> list[str]:
    lines: list[str] = []
    for n in sorted({int(m.group(1)) for k in data if (m := re.match(r"e1-first-sync-n(\d+)$", k))}):
        e1, e2, e3 = (data.get(f"{p}-n{n}") for p in ("e1-first-sync", "e2-no-change-sync", "e3-no-change-diff"))
        lines += [f"#### {label}: N = {n} apps ({n * 4} objects)", ""]
        lines += [
            "| benchmark | Tether, median s (min–max) | kubectl, median s (min–max) | ratio | target |",
            "|---|---|---|---|---|",
        ]
        for entry, tag in ((e1, "E1 first sync until Available"), (e2, "E2 sync, nothing changed")):
            if not entry:
                continue
            for variant, what in (("inprocess", "in-process"), ("command", "`tether sync` command")):
                r = entry["ratios"].get(variant)
                lines.append(
                    f"| {tag}, {what} | {_range(entry['figures'].get(variant))} | "
                    f"{_range(entry['baseline'].get('kubectl'))} | {_x(r)} | {_verdict(r, entry['targets'].get(variant))} |"
                )
        if e3:
            fig = e3["figures"]["inprocess"]
            lines.append(
                f"| E3 diff, nothing changed, warm LiveCache | {_range(fig, 3)} | — | — | "
                f"{_verdict(fig['median'], e3['targets'].get('inprocess_seconds'))} s |"
            )
            lines.append(
                f"| E3 `tether diff` command (cold process) | {_range(e3['figures'].get('command'))} | — | — | — |"
            )
        lines.append("")
        if e2:
            lines.append(f"E2 write requests, counted by the API server (`apiserver_request_total`): {_writes(e2)}.")
            lines.append(f"Counted in the Tether process (by the harness): {_tether_counted(e2)}.")
            lines.append(f"Tether's own counters: {_engine_counted(e2)}.")
        if e3:
            lines.append(f"E3 write requests, API server: {_writes(e3) or '—'}; in the process: {_tether_counted(e3)}.")
            drift = e3.get("drifting_objects", {})
            lines.append(
                f"Objects reported drifting (should be 0): {drift.get('samples')}; "
                f"`tether diff` exit codes {drift.get('command_exit_codes')}."
            )
        lines += ["", f"Commit: {_commit(e1 or e2 or e3 or {})}; run {(e1 or {}).get('finished_at', '?')}.", ""]
    return lines


def _render_table(e4: Mapping[str, Any] | None, before: Mapping[str, Any] | None = None) -> list[str]:
    if not e4:
        return ["E4 not measured yet.", ""]
    cached = e4["figures"]["cached"]
    lines = []
    if before:
        lines += [
            f"Before ({_commit(before)}): cold {_s(before['figures']['cold'], 1)} ms, cached "
            f"{_s(before['figures']['cached'], 2)} ms, tools {_s(before['baseline']['tools'], 1)} ms per app.",
            "",
        ]
    lines += [
        "| | median ms per app (min–max) | tools run directly, ms per app | ratio | target |",
        "|---|---|---|---|---|",
        f"| cold (empty RenderCache) | {_range(e4['figures']['cold'], 1)} | {_range(e4['baseline']['tools'], 1)} | {_x(e4['ratios'].get('cold'))} | — |",
        f"| cached (RenderCache hit) | {_range(cached, 2)} | {_range(e4['baseline']['tools'], 1)} | {_x(e4['ratios'].get('cached'))} | "
        f"{_verdict(cached['median'], e4['targets']['cached_ms_per_app'])} ms |",
        "",
        f"Of a cached render, resolving the branch (`git ls-remote`, which `desired_state` runs on every call) "
        f"takes {_s(e4.get('git_resolve_ms'), 2)} ms.",
        "",
        "| app | type | cold ms | cached ms | tool ms |",
        "|---|---|---|---|---|",
    ]
    for app, kind in e4["params"]["apps"].items():
        row = e4["per_app_ms"][app]
        lines.append(f"| {app} | {kind} | {row['cold']:.1f} | {row['cached']:.2f} | {row['tool']:.1f} |")
    lines += ["", "Skipped: " + "; ".join(f"{a}: {why}" for a, why in e4["params"]["skipped"].items()), ""]
    lines += [f"Commit: {_commit(e4)}; run {e4.get('finished_at', '?')}.", ""]
    return lines


def _memory_table(e5: Mapping[str, Any] | None) -> list[str]:
    if not e5:
        return ["E5 not measured yet.", ""]
    lines = [
        "| managed objects | Pods running | RSS MiB, median (min–max) | peak RSS MiB | baseline: same process before the cache | cache − baseline | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in e5.get("rows", []):
        rss, base = row["rss_mib"], row["baseline_rss_mib"]
        target = e5["targets"]["rss_mib_at_10000"] if row["managed_objects"] >= 10000 else None
        lines.append(
            f"| {row['managed_objects']} | {row['pods_running']} | {_range(rss, 0)} | {_s(row['peak_rss_mib'], 0)} | "
            f"{_s(base, 0)} | {rss['median'] - base['median']:.0f} | {_verdict(rss['median'], target) if target else '—'} |"
        )
    probe = (e5.get("rows") or [{}])[-1].get("probes", [{}])[0]
    lines += [
        "",
        f"Kinds tracked: {probe.get('kinds_tracked')}; resource-tree method of the cache: "
        f"{probe.get('tree_method') or 'none at this commit (the cache holds no Pods)'}; "
        f"descendant kinds watched: {probe.get('descendant_kinds_watched', 0)}; nodes in all apps' trees: "
        f"{probe.get('tree_nodes', 0)}, of which Pods: {probe.get('pods_in_trees', 0)}.",
        "",
        f"Commit: {_commit(e5)}; run {e5.get('finished_at', '?')}.",
        "",
    ]
    return lines


_C_METHOD = [
    "N apps in Flux's shape (4 objects each) from one monorepo on the bench's smart-HTTP git server, one",
    "namespace per app. Per N, on one devcluster, each variant on a clean slate: **kubectl** — `apply --server-side`",
    "of the N Namespaces and 4N objects, until a watch sees all N Deployments Available (`kubectl wait` checks",
    "one object after another and measured itself: see C0);",
    "**Flux** v1.9.6 — source- and kustomize-controller as local processes (built from the Go module proxy; their",
    "defaults: `--concurrent=4`, QPS 50, burst 300; temp dir on tmpfs), one GitRepository and N Kustomizations",
    "(`prune`, `wait`, a target namespace each), until all are Ready; **Tether** — a fresh `tether serve`, from",
    "creating N Applications (automated sync, prune, self-heal, `CreateNamespace=true`) until all are Synced and",
    "Healthy. CPU seconds come from /proc/<pid>/stat (the process and its children), peak RSS from VmHWM of the",
    "process (the tree's sampled peak beside it). C2 leaves the last `tether serve` alone; API requests are",
    "`apiserver_request_total` deltas on the kinds Tether manages, its CRs, Events and Secrets (the API server",
    "does not label clients; nothing else touches those while idle). C3 patches a managed Deployment's replicas",
    "0 → 2 and times, from a `kubectl get -w`, the event showing 2 to the event showing 0 again. The bench",
    "plays the ingress controller the devcluster lacks: it gives every Ingress the address 127.0.0.1, without",
    "which Argo CD's health rules (and Tether's) keep an Ingress Progressing; kubectl and Flux do not wait for it.",
    "kubectl and Tether take turns, `--c-reps` times each (3 by default), so a machine that drifts weighs on",
    "both alike, and the ratio is of their medians; Flux runs once per N (`--flux-reps`): minutes at N = 1000.",
    "kubectl's and Tether's runs use namespaces no earlier run used (`n100r0-app-0000`…): for 30 s after a",
    "namespace's DELETE, the API server looks it up live in etcd for every write in it (NamespaceLifecycle",
    "admission), which on a re-used name cost ~15 extra GETs per app. While each kubectl and Tether clock runs,",
    "the bench also takes what the whole machine spent (/proc/stat, all but idle and I/O wait), what each",
    "control-plane process spent, and what the bench spent itself with the children it reaped (kubectl's",
    "apply, the git server's CGI): both variants keep the two cores busy, so that table says where a ratio",
    "comes from. With `--floor-reps`, the **floor** (`bench/floor.py`) runs too, after kubectl in the first",
    "repetitions and timed as Tether is: a few threads that POST each Application's namespace, apply its four",
    "objects and, once its Deployment is Available, write one status of Tether's shape and size. No render,",
    "diff, health rules, Events or LIST of every kind: what any controller of Applications must ask of the",
    "API server, so floor / kubectl is the part of the ratio that is not Tether's own work.",
    "",
]


def _control_plane_table(c0: Mapping[str, Any] | None) -> list[str]:
    if not c0:
        return ["C0 not measured yet (`python -m bench --only C0`).", ""]
    figures = c0["figures"]
    flags = " ".join(f"`--{k}={v}`" for k, v in c0["params"]["raised_flags"].items())
    lines = [
        "kubectl baseline (apply --server-side of N apps into N namespaces, then until all N Deployments are",
        f"Available), on a fresh devcluster each: kube-controller-manager's defaults, then the devcluster's {flags}.",
        "",
        "| N apps | setting | apply s | all Available (watch) s | `kubectl wait` returned s |",
        "|---|---|---|---|---|",
    ]

    def row(entry: Any) -> tuple[str, str, str]:
        if isinstance(entry, Mapping):  # apply, watch and kubectl wait
            return (
                f"{entry.get('apply_seconds', 0):.1f}",
                f"{entry['seconds']:.1f}",
                f"{entry['kubectl_wait_seconds']:.1f}" if "kubectl_wait_seconds" in entry else "—",
            )
        return ("—", "—", f"{entry:.1f}")  # the first C0 run timed kubectl wait only

    for n in c0["params"]["sizes"]:
        for label, title in (("kcm_defaults", "kcm defaults"), ("devcluster", "raised")):
            data = figures[label].get("by_n") or figures[label].get("seconds_by_n") or {}
            if str(n) in data:
                apply_s, watch_s, wait_s = row(data[str(n)])
                lines.append(f"| {n} | {title} | {apply_s} | {watch_s} | {wait_s} |")
    lines += ["", f"Commit: {_commit(c0)}; run {c0.get('finished_at', '?')}.", ""]
    return lines


_COMPONENTS = ("kube-apiserver", "etcd", "kube-controller-manager")


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}"


def _machine_load_table(runs: list[tuple[int, Mapping[str, Any]]]) -> list[str]:
    """Where the machine's CPU went while each variant's clock ran (``MachineLoad``), medians of the samples."""
    rows = []
    for n, c1 in runs:
        for variant in ("kubectl", "floor", "tether"):
            samples = [r for r in c1.get("samples", {}).get(variant) or [] if "machine" in r]
            if not samples:
                continue
            loads = [r["machine"] for r in samples]
            cells = [
                _median([r["seconds"] for r in samples]),
                _median([m["busy_cores"] for m in loads]),
                _median([m["machine_cpu_seconds"] for m in loads]),
                *(_median([m["control_plane_cpu_seconds"].get(c, 0.0) for m in loads]) for c in _COMPONENTS),
                _median([r["cpu_seconds"] for r in samples]) if variant != "kubectl" else "—",
                _median([m["bench_cpu_seconds"] for m in loads]),
            ]
            rows.append(f"| {n} | {variant} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    return [
        "",
        "Where the machine's CPU went while the clock ran (CPU-s; medians over repetitions). The bench's "
        "column is its own process (watches, the git server) and the children it reaped (kubectl, git's CGI).",
        "",
        "| N apps | variant | s | busy cores (of 2) | machine | kube-apiserver | etcd | kube-controller-manager "
        "| controller (Tether or the floor) | bench |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def _floor_table(runs: list[tuple[int, Mapping[str, Any]]]) -> list[str]:
    """The floor controller (bench/floor.py) beside kubectl and Tether, where a run measured it."""
    rows = [
        f"| {n} | {_range(c1['baseline']['kubectl'], 1)} | {_range(c1['baseline']['floor'], 1)} | "
        f"{_x(c1['ratios']['floor_to_kubectl'])} | {_x(c1['ratios']['tether_to_floor'])} | "
        f"{_s(c1['baseline']['floor_cpu_seconds'], 1)} | {c1['params']['floor_repetitions']} |"
        for n, c1 in runs
        if "floor" in c1["baseline"]
    ]
    if not rows:
        return []
    return [
        "",
        "The floor: a controller that makes only the requests any controller of Applications must "
        "(bench/floor.py), timed in the same repetitions as kubectl (medians, min–max).",
        "",
        "| N apps | kubectl s | floor s | floor / kubectl | Tether / floor | floor CPU-s | repetitions |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]


def _cold_start_table(data: Mapping[str, Mapping[str, Any]]) -> list[str]:
    runs = sorted(
        ((int(m.group(1)), v) for k, v in data.items() if (m := re.match(r"c1-cold-start-n(\d+)$", k))),
        key=lambda item: item[0],
    )
    if not runs:
        return ["C1 not measured yet.", ""]
    lines = [
        "| N apps | Tether s | kubectl s | Flux s | Tether / kubectl (target ≤ 1.25) | Tether / Flux (target < 1) "
        "| Tether CPU-s | Tether peak RSS MiB (tree) | kustomize-controller CPU-s | its peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, c1 in runs:
        fig, base, ratios = c1["figures"], c1["baseline"], c1["ratios"]
        to_kubectl, to_flux = ratios.get("tether_to_kubectl"), ratios.get("tether_to_flux")
        flux_verdict = "—" if to_flux is None else ("met" if to_flux < 1 else "**missed**")
        lines.append(
            f"| {n} | {_range(fig['tether'], 1)} | {_range(base['kubectl'], 1)} | {_range(base['flux'], 1)} | "
            f"{_x(to_kubectl)} {_verdict(to_kubectl, c1['targets'].get('ratio_to_kubectl'))} | "
            f"{_x(to_flux)} {flux_verdict} | {_s(fig['tether_cpu_seconds'], 1)} | "
            f"{_s(fig['tether_peak_rss_mib'], 0)} ({_s(fig.get('tether_peak_tree_rss_mib'), 0)}) | "
            f"{_s(base['kustomize-controller_cpu_seconds'], 1)} | {_s(base['kustomize-controller_peak_rss_mib'], 0)} |"
        )
    ramp = [
        "",
        "When the apps became done (seconds after the start; median over repetitions): first, median, 90th percentile, last.",
        "",
        "| N apps | Tether | Flux |",
        "|---|---|---|",
    ]
    for n, c1 in runs:
        cells = []
        for variant in ("tether", "flux"):
            rows = c1.get("samples", {}).get(variant) or []
            if rows and "median_done_seconds" in rows[0]:
                mid = sorted(rows, key=lambda r: r["seconds"])[len(rows) // 2]
                cells.append(
                    f"{mid['first_done_seconds']:.1f} / {mid['median_done_seconds']:.1f} / "
                    f"{mid['p90_done_seconds']:.1f} / {mid['seconds']:.1f}"
                )
            else:
                cells.append("—")
        ramp.append(f"| {n} | {cells[0]} | {cells[1]} |")
    if any("/" in line for line in ramp[5:]):
        lines += ramp
    lines += _floor_table(runs)
    lines += _machine_load_table(runs)
    lines += [""]
    for n, c1 in runs:  # the sizes may come from different runs (a run stopped early, a size re-measured)
        lines.append(f"N = {n}: commit {_commit(c1)}; run {c1.get('finished_at', '?')}.")
    return lines + [""]


def _requests_line(rows: Mapping[str, Mapping[str, int]]) -> str:
    if not rows:
        return "none"
    return "; ".join(
        f"{verb} " + ", ".join(f"{label} {count}" for label, count in sorted(by.items()))
        for verb, by in sorted(rows.items())
    )


def _steady_state_table(c2: Mapping[str, Any] | None) -> list[str]:
    if not c2:
        return ["C2 not measured yet.", ""]
    st, targets = c2["steady_state"], c2["targets"]
    allowed = st["ls_remote_allowed_per_repository"]
    worst = max(st["ls_remote"].values(), default=0)
    cpu_ok = "met" if st["cpu_percent"] < targets["cpu_percent"] else "**missed**"
    sent = st.get("tether_writes", st["apiserver_writes_on_tether_resources"])
    writes_ok = "met" if sent <= targets["writes"] else "**missed**"
    git_ok = "met" if worst <= allowed else "**missed**"
    lines = [
        f"{c2['params']['apps']} apps, {st['seconds']:.0f} s with nothing changing, `--poll-interval "
        f"{st['poll_interval']:g}`.",
        "",
        "| | measured | target | verdict |",
        "|---|---|---|---|",
        f"| CPU of `tether serve` (% of one core) | {st['cpu_percent']:.2f} % ({st['cpu_seconds']:.1f} CPU-s) | "
        f"< {targets['cpu_percent']:g} % | {cpu_ok} |",
        f"| API writes sent by `tether serve` (its own count: applies, dry runs, status, Events) | {sent} | "
        f"{targets['writes']} | {writes_ok} |",
        f"| API writes on Tether's kinds from every client (the API server's count) | "
        f"{st['apiserver_writes_on_tether_resources']} | — | — |",
        f"| API reads on Tether's kinds | {st['apiserver_reads_on_tether_resources']} | — | — |",
        f"| `ls-remote` per repository | {worst} (upload-pack POSTs: {sum(st['fetches'].values())}; with "
        f"protocol v2 an ls-remote sends one too) | ≤ {allowed} "
        f"(one per interval) | {git_ok} |",
        "",
        f"Requests on Tether's kinds by verb: {_requests_line(st['apiserver_requests']['tether_resources'])}.",
        f"Other clients (control plane, kwok) in the same window: {_requests_line(st['apiserver_requests']['other_resources'])}.",
        f"Tether's own counters in the window (its /metrics): "
        f"{json.dumps(st['tether_own_counters'], sort_keys=True) if st['tether_own_counters'] else 'all unchanged'}.",
        *(
            [
                f"The window opened once `tether serve` had sent C1's last writes (`tether_writes_pending` at 0), "
                f"{st['quiet_after_c1_seconds']:g} s after C1 ended."
            ]
            if "quiet_after_c1_seconds" in st
            else []
        ),
        "",
        f"Commit: {_commit(c2)}; run {c2.get('finished_at', '?')}.",
        "",
    ]
    return lines


def _drift_table(c3: Mapping[str, Any] | None) -> list[str]:
    if not c3:
        return ["C3 not measured yet.", ""]
    fig = c3["figures"]
    return [
        "| | median s (min–max) |",
        "|---|---|",
        f"| patch seen → revert seen | {_range(fig['revert_seconds'], 3)} |",
        f"| `kubectl patch` started → revert seen | {_range(fig['revert_seconds_from_patch_command'], 3)} |",
        "",
        f"{c3['params']['apps']} apps running; one app per repetition. Commit: {_commit(c3)}; run {c3.get('finished_at', '?')}.",
        "",
    ]


def _controller_section(after: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = ["### C1–C3: the controller against kubectl and Flux", "", *_C_METHOD]
    first = next((v for k, v in sorted(after.items()) if re.match(r"c[123]-", k)), None)
    if first:
        m = first["machine"]
        lines += [
            f"Run: {'QUICK' if first.get('quick') else 'full'}; load average at its start "
            f"{[round(x, 2) for x in m.get('load_average_at_start', [])]} on {m['cores']} cores "
            "(other work shared the machine).",
            "",
        ]
    lines += ["#### C1: cold start", ""] + _cold_start_table(after)
    lines += ["#### C2: steady state", ""] + _steady_state_table(after.get("c2-steady-state"))
    lines += ["#### C3: drift reverted by self-heal", ""] + _drift_table(after.get("c3-drift"))
    lines += ["#### C0: the control plane is not what is measured", ""] + _control_plane_table(
        after.get("c0-control-plane")
    )
    return lines


_W_METHOD = [
    "One devcluster, the bench's smart-HTTP git server and one `tether serve` (`--poll-interval 600`, so only a",
    "webhook moves an app). The git server's post-receive hook sends serve a GitHub-format push, signed with the",
    "secret the `tether-webhook` Secret holds, for every push, as a provider would. **W1**: one app of 20 objects",
    "(5 Deployments of one replica, 5 Services, 9 ConfigMaps, a Secret whose value comes from a throwaway `pass`",
    "store); each push changes a ConfigMap value and one Deployment's pod-template annotation, timed from the start",
    "of the commit and push until a watch sees the app Synced and Healthy at the new revision; kubectl's round",
    "(the same objects with the secret value put in, `apply --server-side` into a namespace of its own, then",
    "`kubectl wait --for=condition=Available` of the changed Deployment) runs just before each of Tether's.",
    "**W2**: 300 apps of one ConfigMap each in one monorepo, one shared namespace; a commit touching one app's",
    "file, timed until a watch sees that ConfigMap hold the new value; renders from serve's /metrics. **W3**: the",
    "W2 monorepo under a fixed schedule of signed deliveries (duplicates of real pushes, pushes for repositories",
    "no app uses, pings, ignored events) with a real commit pushed about once a second; answer times measured by",
    "the client on loopback; a quiet phase before it (no commits, nothing for the worker to do) is the baseline.",
    "",
]


def _p(fig: Mapping[str, Any] | None, key: str, digits: int = 2) -> str:
    if not fig or key not in fig:
        return "—"
    return f"{fig[key]:.{digits}f}"


def _push_table(w1: Mapping[str, Any] | None) -> list[str]:
    if not w1:
        return ["W1 not measured yet (`python -m bench --only W1`).", ""]
    fig, base, ratios = w1["figures"], w1["baseline"], w1["ratios"]
    target = w1["targets"].get("ratio_to_kubectl_p50")
    rows = [
        ("Tether: push → Synced and Healthy (webhook)", fig.get("tether")),
        (
            "kubectl `apply --server-side` + `wait --for=condition=Available` (baseline)",
            base.get("kubectl_apply_wait_available"),
        ),
        ("kubectl `apply --server-side` + `rollout status`", base.get("kubectl_apply_rollout_status")),
        ("the commit and push itself (the hook delivers the webhook within it)", fig.get("push_seconds")),
    ]
    lines = [
        f"{w1['params']['objects']} objects, {w1['params']['pushes']} pushes.",
        "",
        "| | p50 s | p90 s | median (min–max, n) |",
        "|---|---|---|---|",
    ]
    for label, f in rows:
        lines.append(f"| {label} | {_p(f, 'median')} | {_p(f, 'p90')} | {_range(f)} |")
    r50 = ratios.get("tether_to_kubectl_wait_p50")
    lines += [
        "",
        f"Tether / kubectl at p50: {_x(r50)} {_verdict(r50, target)}; at p90: {_x(ratios.get('tether_to_kubectl_wait_p90'))}; "
        f"against `rollout status` (what Healthy means) at p50: {_x(ratios.get('tether_to_kubectl_rollout_p50'))}.",
        "",
        f"Commit: {_commit(w1)}; run {w1.get('finished_at', '?')}.",
        "",
    ]
    return lines


def _one_of_many_table(w2: Mapping[str, Any] | None) -> list[str]:
    if not w2:
        return ["W2 not measured yet (`python -m bench --only W2`).", ""]
    fig, base, targets = w2["figures"], w2["baseline"], w2["targets"]
    live, renders = fig["seconds_until_live"], fig["renders"]
    live_ok = _verdict(live["median"], targets.get("seconds"))
    renders_ok = "met" if renders["max"] <= targets.get("renders", 1) else "**missed**"
    lines = [
        f"{w2['params']['apps']} apps in one monorepo ({w2['params']['namespace']} namespace), {w2['params']['commits']} "
        f"commits each touching one app; the {w2['params']['apps']} apps were first Synced in "
        f"{w2['params'].get('setup_seconds', 0):.0f} s.",
        "",
        "| | median (min–max, n) | target | verdict |",
        "|---|---|---|---|",
        f"| push → the app's ConfigMap holds the new value, s | {_range(live)} | ≤ {targets.get('seconds'):g} s | {live_ok} |",
        f"| renders per commit (`tether_renders_total`) | {_range(renders, 0)} | {targets.get('renders')} | {renders_ok} |",
        f"| push → all {w2['params']['apps']} apps show the new revision, s | "
        f"{_range(fig.get('seconds_until_all_apps_at_revision'))} | — | — |",
        f"| kubectl `apply --server-side` of the changed file, s (baseline) | {_range(base.get('kubectl_apply'))} | — | — |",
        "",
        "| commit touching | live s | renders | refreshes | moves | status writes |",
        "|---|---|---|---|---|---|",
    ]
    for row in w2.get("commits", []):
        lines.append(
            f"| {row['app']} | {row['live_seconds']:.2f} | {row['tether_renders_total']} | "
            f"{row['tether_webhook_refreshes_total']} | {row['tether_webhook_moves_total']} | "
            f"{row['tether_status_writes_total']} |"
        )
    lines += ["", f"Commit: {_commit(w2)}; run {w2.get('finished_at', '?')}.", ""]
    return lines


def _load_table(w3: Mapping[str, Any] | None) -> list[str]:
    if not w3:
        return ["W3 not measured yet (`python -m bench --only W3`).", ""]
    fig, base, targets, params = w3["figures"], w3.get("baseline", {}), w3["targets"], w3["params"]
    load, conv, counters = w3.get("load", {}), w3.get("convergence", {}), w3.get("counters", {})
    answer, quiet = fig["answer_ms"], base.get("answer_ms_quiet")
    errors = fig["server_errors"]["median"]
    p99_ok = "met" if answer["p99"] < targets["p99_ms"] else f"**missed** by {answer['p99'] / targets['p99_ms']:.2f}×"
    errors_ok = "met" if errors <= targets["server_errors"] else "**missed**"
    at_last = conv.get("every_app_at_last_revision")
    conv_ok = "met" if at_last else "**missed**"
    pushes, batches = counters.get("tether_webhook_pushes_total", 0), counters.get("tether_webhook_batches_total", 0)
    lines = [
        f"{params['rate_per_second']:g} deliveries a second for {params['seconds']:g} s ({load.get('deliveries')} sent by "
        f"the bench, {load.get('pushes')} real pushes delivered by the git server's hook) on the {params['apps']}-app "
        f"monorepo; load average {params.get('load_average_before')} before, {params.get('load_average_after')} after.",
        "",
        "| | measured | target | verdict |",
        "|---|---|---|---|",
        f"| answer time p50 / p99, ms | {answer['median']:.1f} / {answer['p99']:.1f} (max {answer['max']:.1f}) | "
        f"p99 < {targets['p99_ms']:g} | {p99_ok} |",
        f"| baseline, quiet receiver ({params.get('quiet_seconds', 0):g} s, nothing for the worker), p50 / p99, ms | "
        f"{_p(quiet, 'median', 1)} / {_p(quiet, 'p99', 1)} | — | — |",
        f"| from the scheduled instant p50 / p99, ms (client: send lag p99 {_p(fig.get('client_send_lag_ms'), 'p99', 1)}, "
        f"loop lag p99 {_p(fig.get('client_loop_lag_ms'), 'p99', 1)}) | "
        f"{_p(fig.get('answer_ms_from_schedule'), 'median', 1)} / {_p(fig.get('answer_ms_from_schedule'), 'p99', 1)} | — | — |",
        f"| 5xx answers | {errors} (answers: {json.dumps(load.get('statuses', {}), sort_keys=True)}; no answer: "
        f"{load.get('client_error_count', 0)}) | {targets['server_errors']} | {errors_ok} |",
        f"| every app at the last pushed revision (touched ones with their last value) | {'yes' if at_last else 'no'} "
        f"(touched: {conv.get('touched_apps')} apps, "
        f"{conv.get('seconds_after_window', 0):.1f} s after the window; {conv.get('apps_at_last_revision')} of "
        f"{conv.get('apps')} apps there in the end"
        + (
            f", all {conv['all_apps_at_last_revision_seconds_after_window']:.1f} s after the window"
            if conv.get("all_apps_at_last_revision_seconds_after_window") is not None
            else ""
        )
        + f") | yes | {conv_ok} |",
        "",
        f"Coalescing (serve's /metrics over the window): {pushes} pushes in {batches} batches "
        f"({pushes / batches if batches else 0:.1f} a batch); {counters.get('tether_webhook_refreshes_total', 0)} refreshes, "
        f"{counters.get('tether_webhook_moves_total', 0)} moves, {counters.get('tether_webhook_unmatched_total', 0)} "
        f"unmatched, {counters.get('tether_webhook_diffs_total', 0)} git diffs, {counters.get('tether_renders_total', 0)} "
        f"renders, {counters.get('tether_status_writes_total', 0)} status writes, "
        f"{counters.get('tether_webhook_refused_total', 0)} refused (503). "
        f"serve's CPU from the window's start until it settled: {w3.get('serve_cost', {}).get('cpu_seconds', 0):.1f} s.",
        "",
    ]
    busy = w3.get("contention")
    if busy:
        lines += [
            f"The machine in the window ({busy['window_seconds']:.1f} s): CPU {busy['cpu_busy_percent']:.0f} % busy, some "
            f"task waiting for a CPU {busy['cpu_pressure_some_percent']:.0f} % of the time (/proc/pressure/cpu); "
            f"serve ran {busy['serve_cpu_seconds']:.1f} CPU-s and waited {busy['serve_runqueue_wait_seconds']:.1f} s "
            f"for a CPU (schedstat); the load client ran {busy['client_cpu_seconds']:.1f} CPU-s and waited "
            f"{busy['client_runqueue_wait_seconds']:.1f} s.",
            "",
        ]
    lines += [
        f"Commit: {_commit(w3)}; run {w3.get('finished_at', '?')}.",
        "",
    ]
    return lines


def _webhook_section(after: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = ["### W1–W3: webhooks", "", *_W_METHOD]
    first = next((v for k, v in sorted(after.items()) if re.match(r"w[123]-", k)), None)
    if first:
        m = first["machine"]
        lines += [
            f"Run: {'QUICK' if first.get('quick') else 'full'}; load average at its start "
            f"{[round(x, 2) for x in m.get('load_average_at_start', [])]} on {m['cores']} cores "
            "(other work shared the machine).",
            "",
        ]
    lines += ["#### W1: push to healthy", ""] + _push_table(after.get("w1-push-to-healthy"))
    lines += ["#### W2: one app of 300", ""] + _one_of_many_table(after.get("w2-one-app-of-300"))
    lines += ["#### W3: load", ""] + _load_table(after.get("w3-load"))
    return lines


def _shown(path: Path) -> Path:
    """``path`` relative to the checkout when it lies inside it (results elsewhere are shown as they are)."""
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def _profile(directory: Path, lines_wanted: int = 45) -> list[str]:
    files = sorted((directory / "profiles").glob("e2-inprocess-n*.txt"))
    if not files:
        return ["No profile yet (`make bench` writes one of E2 in-process).", ""]
    text = files[0].read_text().splitlines()
    body = [line.rstrip() for line in text if line.strip()][:lines_wanted]
    return [
        f"pyinstrument, one E2 in-process sync of the 100 apps (`{_shown(files[0])}`, "
        f"full tree and HTML beside it), first {lines_wanted} lines:",
        "",
        "```",
        *body,
        "```",
        "",
    ]


def generate(results: Path = RESULTS) -> str:
    after, before = _load(results), _load(results / "before")
    # The machine line describes E1–E5's run; the C and W sections name their own (c*.json come first by name).
    any_run = next((v for k, v in after.items() if k.startswith("e")), next(iter(after.values()), None))
    lines = ["<!-- generated by `python -m bench.report` from bench/results; do not edit by hand -->", ""]
    if any_run:
        m = any_run["machine"]
        lines += [
            f"Machine: {m['cores']} cores ({m['cpu_model']}), {m['memory_mib']} MiB, Linux {m['kernel']}, "
            f"Python {m['python']}; load average at start {m.get('load_average_at_start')}. "
            f"{'QUICK run' if any_run.get('quick') else 'Full run'}.",
            "",
        ]
    lines += _headline(after, before)
    lines += ["### E1–E3: syncs and diffs", ""]
    lines += _sync_tables(after, "After") or ["Not measured yet.", ""]
    if before:
        lines += _sync_tables(before, "Before")
    lines += ["### E4: render throughput", ""] + _render_table(after.get("e4-render"), before.get("e4-render"))
    lines += ["### E5: memory", ""] + _memory_table(after.get("e5-rss"))
    lines += _controller_section(after)
    lines += _webhook_section(after)
    lines += ["### Profile: where a no-change sync spends its time", ""] + _profile(results)
    return "\n".join(lines)


def refresh(doc: Path = DOC, results: Path = RESULTS) -> None:
    text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{BEGIN}\n{generate(results)}\n{END}{tail}")
    print(f"refreshed {doc}")


if __name__ == "__main__":
    refresh()
