"""A fresh process that holds a LiveCache of the E5 namespace and reports its RSS as JSON on stdout.

``python -m bench.rss_probe --kubeconfig K --namespace NS --apps N`` — run by ``bench.memory``.
The baseline is the same process before the cache exists (Python, Tether imported, connected).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import time
from pathlib import Path
from typing import Any

TREE_METHODS = ("tree", "resource_tree", "app_tree")


def _status() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) // 1024  # MiB
    return out


async def probe(kubeconfig: str, namespace: str, apps: list[str], settle: float) -> dict[str, Any]:
    from tether import log as tether_log
    from tether.cluster import Cluster
    from tether.cluster.cache import LiveCache

    tether_log.configure(logging.WARNING)
    cluster = await Cluster.connect(kubeconfig)
    await cluster.version()
    gc.collect()
    baseline = _status()
    cache = LiveCache(cluster)
    start = time.perf_counter()
    tracked = await cache.track_all()
    descendants = []
    if callable(getattr(cache, "track_tree", None)):  # descendants (ReplicaSets, Pods…) without the app label
        descendants = await cache.track_tree()
    tree_method = next((m for m in TREE_METHODS if callable(getattr(cache, m, None))), None)
    trees: list[Any] = []
    if tree_method is not None:
        for app in apps:
            tree = getattr(cache, tree_method)(app)
            if asyncio.iscoroutine(tree):
                tree = await tree
            trees.append(tree)
    loaded = time.perf_counter() - start
    await asyncio.sleep(settle)  # watch events of the last changes land
    del trees
    gc.collect()
    held = _status()
    managed = sum(len(cache.owned_by(app)) for app in apps[:50])  # after measuring: owned_by may copy
    pods = nodes = 0
    if tree_method is not None:
        for app in apps:
            tree = getattr(cache, tree_method)(app)
            if asyncio.iscoroutine(tree):
                tree = await tree
            for node in tree or ():
                nodes += 1
                pods += getattr(getattr(node, "key", None), "kind", "") == "Pod"
    await cache.close()
    await cluster.close()
    return {
        "baseline_rss_mib": baseline["VmRSS"],
        "rss_mib": held["VmRSS"],
        "peak_rss_mib": held["VmHWM"],
        "kinds_tracked": len(tracked),
        "load_seconds": round(loaded, 3),
        "managed_objects_in_first_50_apps": managed,
        "descendant_kinds_watched": len(descendants),
        "tree_method": tree_method,
        "tree_nodes": nodes,
        "pods_in_trees": pods,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--apps", type=int, required=True)
    parser.add_argument("--settle", type=float, default=2.0)
    args = parser.parse_args()
    from bench.workload import app_name

    apps = [f"mem-{app_name(i)}" for i in range(args.apps)]
    print(json.dumps(asyncio.run(probe(args.kubeconfig, args.namespace, apps, args.settle))))


if __name__ == "__main__":
    main()
