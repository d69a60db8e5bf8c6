"""E5: RSS of a process whose LiveCache holds 1k / 5k / 10k managed objects, plus their Pods.

Apps of 20 objects (19 ConfigMaps and a Deployment with one replica, so each app also has a
ReplicaSet and a Pod running on the kwok nodes) are applied with ``kubectl apply --server-side
--field-manager tether``, carrying Tether's tracking label and annotation, as a sync would leave
them. The sizes are cumulative (5k adds 4k objects to the 1k). For each size a fresh process
(``bench.rss_probe``) connects, tracks every kind with ``LiveCache.track_all()`` (and reads every
app's resource tree when the cache has such a method), and reports VmRSS; its baseline is the
same process before the cache. Repeated ``reps`` times per size; the median is the figure.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import BenchError, Kubectl, Result, log, run, summary, timed
from bench.workload import MEMORY_APP_SIZE, app_name, memory_app, namespace_object, write_manifests

NAMESPACE = "bench-e5"
PARALLEL_APPLIES = 4


def _apply(kubectl: Kubectl, workdir: Path, first: int, last: int) -> None:
    objects = [o for i in range(first, last) for o in memory_app(f"mem-{app_name(i)}", NAMESPACE)]
    chunk = max(1, -(-len(objects) // PARALLEL_APPLIES))
    files = [
        write_manifests(workdir / "e5" / f"apps-{first}-{k}.yaml", objects[k : k + chunk])
        for k in range(0, len(objects), chunk)
    ]
    with ThreadPoolExecutor(PARALLEL_APPLIES) as pool:
        list(
            pool.map(
                lambda f: kubectl("apply", "--server-side", "--field-manager=tether", "-f", str(f), timeout=900), files
            )
        )


def run_memory(*, kubeconfig: str, workdir: Path, sizes: list[int], reps: int = 3, cleanup: bool = True) -> Result:
    """``cleanup`` False leaves the namespace to the devcluster's own teardown (it is stopped right after)."""
    kubectl = Kubectl(kubeconfig)
    write_manifests(workdir / "e5" / "ns.yaml", [namespace_object(NAMESPACE)])
    kubectl("apply", "--server-side", "-f", str(workdir / "e5" / "ns.yaml"))
    have = 0
    rows: list[dict[str, Any]] = []
    try:
        for size in sorted(sizes):
            want = size // MEMORY_APP_SIZE
            seconds, _ = timed(functools.partial(_apply, kubectl, workdir, have, want))
            have = want
            kubectl(
                "wait",
                "--for=condition=Available",
                "deployment",
                "--all",
                "-n",
                NAMESPACE,
                "--timeout=600s",
                timeout=660,
            )
            pods = len(kubectl("get", "pods", "-n", NAMESPACE, "-o", "name", timeout=120).stdout.split())
            samples = []
            for _ in range(reps):
                done = run(
                    [
                        sys.executable,
                        "-m",
                        "bench.rss_probe",
                        "--kubeconfig",
                        kubeconfig,
                        "--namespace",
                        NAMESPACE,
                        "--apps",
                        str(want),
                    ],
                    timeout=600,
                    env=os.environ,
                )
                samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
            row: dict[str, Any] = {
                "managed_objects": want * MEMORY_APP_SIZE,
                "apps": want,
                "pods_running": pods,
                "replicasets": want,
                "setup_seconds": round(seconds, 1),
                "rss_mib": summary([s["rss_mib"] for s in samples], "MiB"),
                "peak_rss_mib": summary([s["peak_rss_mib"] for s in samples], "MiB"),
                "baseline_rss_mib": summary([s["baseline_rss_mib"] for s in samples], "MiB"),
                "probes": samples,
            }
            rows.append(row)
            log(
                f"E5 {row['managed_objects']} managed objects + {pods} pods: RSS {row['rss_mib']['median']} MiB "
                f"(peak {row['peak_rss_mib']['median']}, baseline {row['baseline_rss_mib']['median']})"
            )
    finally:
        try:
            if cleanup:
                kubectl.delete_namespaces([NAMESPACE], timeout=600)
        except BenchError as exc:
            log(f"E5: cleanup: {exc}")
    result = Result(
        name="e5-rss",
        title="E5: RSS of a process holding a LiveCache of N managed objects plus their Pods",
        params={
            "sizes": sorted(sizes),
            "repetitions": reps,
            "shape": f"apps of {MEMORY_APP_SIZE}: 19 ConfigMaps + 1 Deployment (replicas 1 → 1 ReplicaSet, 1 Pod on kwok)",
            "process": "fresh python process: Cluster.connect, LiveCache.track_all() (+ each app's tree if the cache has one)",
        },
    )
    for row in rows:
        key = f"{row['managed_objects']}"
        result.figures[key] = row["rss_mib"]
        result.baseline[key] = row["baseline_rss_mib"]
    result.targets = {"rss_mib_at_10000": 300}
    result.extra["rows"] = rows
    return result
