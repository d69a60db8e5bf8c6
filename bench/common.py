"""What every benchmark shares: the machine, the commit, samples and their statistics, result files,
subprocesses with timeouts, kubectl, the API server's request counters and Tether's own."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
RESULTS = REPO / "bench" / "results"
WRITE_VERBS = frozenset({"APPLY", "CREATE", "UPDATE", "PATCH", "DELETE", "DELETECOLLECTION"})
HTTP_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BenchError(Exception):
    """A benchmark could not be run as specified (the numbers would be meaningless)."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- machine and commit


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {
        "cores": os.cpu_count(),
        "memory_mib": mem_kib // 1024,
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": load,
    }


def engine_commit(src: Path) -> dict[str, Any]:
    """The commit of the Tether source under test, and whether its src/ differs from that commit."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(src), *args], capture_output=True, text=True, timeout=30)
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = [line for line in git("status", "--porcelain", "--", ".").splitlines() if line.strip()]
    return {
        "sha": git("rev-parse", "HEAD"),
        "subject": git("log", "-1", "--format=%s")[:120],
        "src": str(src),
        "uncommitted_files_in_src": len(changed),
    }


# --------------------------------------------------------------------------- samples


def summary(samples: Sequence[float], unit: str = "s") -> dict[str, Any]:
    if not samples:
        raise BenchError("no samples")
    return {
        "unit": unit,
        "samples": [round(s, 6) for s in samples],
        "min": round(min(samples), 6),
        "median": round(statistics.median(samples), 6),
        "max": round(max(samples), 6),
    }


def ratio(value: Mapping[str, Any], baseline: Mapping[str, Any]) -> float | None:
    if not baseline.get("median"):
        return None
    return round(value["median"] / baseline["median"], 3)


@dataclass
class Result:
    """One benchmark's result file."""

    name: str
    title: str
    params: dict[str, Any]
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    baseline: dict[str, dict[str, Any]] = field(default_factory=dict)
    ratios: dict[str, float | None] = field(default_factory=dict)
    targets: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def write(self, out_dir: Path, run_info: Mapping[str, Any]) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{self.name}.json"
        data = {
            "name": self.name,
            "title": self.title,
            **run_info,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "params": self.params,
            "figures": self.figures,
            "baseline": self.baseline,
            "ratios": self.ratios,
            "targets": self.targets,
            "notes": self.notes,
            **self.extra,
        }
        path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
        log(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
        return path


# --------------------------------------------------------------------------- subprocesses


def tool(name: str) -> str:
    path = VENV_BIN / name
    if not path.exists():
        raise BenchError(f"{path} is missing; run `make install` first")
    return str(path)


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command with a timeout; a failure is a BenchError quoting its stderr."""
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{argv[0]} timed out after {timeout:g}s: {' '.join(argv[1:6])}") from exc
    if check and done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-8:]
        raise BenchError(f"{Path(argv[0]).name} exited {done.returncode}: {' '.join(argv[1:6])}\n" + "\n".join(tail))
    return done


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


class Kubectl:
    def __init__(self, kubeconfig: str) -> None:
        self.kubeconfig = kubeconfig
        self.bin = tool("kubectl")

    def __call__(self, *args: str, timeout: float = 300.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([self.bin, "--kubeconfig", self.kubeconfig, *args], timeout=timeout, check=check)

    def delete_namespaces(self, names: Sequence[str], timeout: float = 300.0) -> None:
        """Delete namespaces and return once they are gone (the next repetition starts on a clean slate)."""
        if not names:
            return
        self("delete", "namespace", *names, "--ignore-not-found", "--wait=false", timeout=60)
        self(
            "wait",
            "--for=delete",
            *[f"namespace/{n}" for n in names],
            f"--timeout={int(timeout)}s",
            timeout=timeout + 30,
        )


# --------------------------------------------------------------------------- request counting

_METRIC = re.compile(r"^apiserver_request_total\{([^}]*)\}\s+([0-9.eE+-]+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def apiserver_requests(kubectl: Kubectl) -> Counter[tuple[str, str, str, str, str]]:
    """apiserver_request_total as (verb, dry_run, group, resource, subresource) → count, from /metrics."""
    text = kubectl("get", "--raw", "/metrics", timeout=60).stdout
    counts: Counter[tuple[str, str, str, str, str]] = Counter()
    for line in text.splitlines():
        match = _METRIC.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match.group(1)))
        key = (
            labels.get("verb", ""),
            labels.get("dry_run", ""),
            labels.get("group", ""),
            labels.get("resource", ""),
            labels.get("subresource", ""),
        )
        counts[key] += int(float(match.group(2)))
    return counts


def apiserver_writes(
    before: Counter[tuple[str, str, str, str, str]],
    after: Counter[tuple[str, str, str, str, str]],
    resources: frozenset[str],
) -> dict[str, Any]:
    """Write requests the API server counted between two scrapes on ``resources`` (no subresources:
    the controllers' own status updates are not ours), split into real writes and dry runs."""
    writes: Counter[str] = Counter()
    dry: Counter[str] = Counter()
    for key, value in after.items():
        verb, dry_run, _group, resource, subresource = key
        delta = value - before.get(key, 0)
        if delta <= 0 or verb not in WRITE_VERBS or resource not in resources or subresource:
            continue
        (dry if dry_run else writes)[verb] += delta
    return {
        "writes": sum(writes.values()),
        "dry_runs": sum(dry.values()),
        "writes_by_verb": dict(writes),
        "dry_runs_by_verb": dict(dry),
    }


class RequestCounter:
    """Counts every request a ``tether.cluster.Cluster`` sends, by HTTP method, dry runs apart.

    The engine's own per-verb counters are read too when the Cluster has them (``engine``);
    this wrapper works on any commit, so "before" and "after" are counted the same way.
    """

    def __init__(self, cluster: Any) -> None:
        self.counts: Counter[str] = Counter()
        original = cluster._request

        async def counted(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
            query = kwargs.get("query") or {}
            dry = bool(query.get("dryRun")) if isinstance(query, Mapping) else False
            self.counts[f"{method}{' dry-run' if dry else ''}"] += 1
            return await original(method, path, *args, **kwargs)

        cluster._request = counted
        self.cluster = cluster

    def snapshot(self) -> Counter[str]:
        return Counter(self.counts)

    @staticmethod
    def delta(before: Counter[str], after: Counter[str]) -> dict[str, Any]:
        diff = {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}
        writes = sum(v for k, v in diff.items() if k in HTTP_WRITES)
        dry_runs = sum(v for k, v in diff.items() if k.endswith("dry-run"))
        return {"by_method": diff, "writes": writes, "dry_runs": dry_runs, "total": sum(diff.values())}

    def engine(self) -> Any:
        """A snapshot of the engine's own counters (``Cluster.requests``), when this commit has them."""
        counter = getattr(self.cluster, "requests", None)
        snapshot = getattr(counter, "snapshot", None)
        return snapshot() if callable(snapshot) else None


def engine_delta(before: Any, after: Any) -> dict[str, Any] | None:
    """What the engine counted between two snapshots (``RequestCounts``: writes, dry runs, by verb)."""
    if after is None:
        return None
    spent = after - before if before is not None else after
    return {
        "writes": spent.writes,
        "dry_runs": spent.dry_runs,
        "total": spent.total,
        "by_verb": spent.as_dict(),
    }
