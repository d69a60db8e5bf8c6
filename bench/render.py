"""E4: render throughput over the corpus apps (argocd-example-apps), cold and cached, next to the tools.

The corpus is committed into a throwaway git repository and read through ``file://``, so the
path is the production one: ``tether.pipeline.desired_state`` with a ``GitCache`` and a
``RenderCache`` (resolve the branch, tree ids of the app's inputs, render or hit the cache).

- cold: a fresh, empty RenderCache each pass (the git cache is already fetched): checkout + render;
- cached: the same RenderCache again, every app a hit;
- baseline: the tool run directly on the app's directory, one process per app as Tether would:
  ``helm template`` (helm apps), ``kubectl kustomize`` (kustomize apps); directory apps have no
  tool, so their baseline is PyYAML's C loader reading the app's files in this process.

Apps are rendered one at a time (concurrency 1); the figure is the mean time per app of one pass
over all of them, and the samples are the passes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import BenchError, Result, log, ratio, run, summary, tool

# ../shared beside the repository, as CI lays it out
CORPUS = Path(
    os.environ.get(
        "TETHER_BENCH_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpora" / "argocd-example-apps"
    )
)
TYPES = ("directory", "helm", "kustomize")


def _git_repo(workdir: Path) -> Path:
    repo = workdir / "corpus-repo"
    if repo.exists():
        return repo
    shutil.copytree(CORPUS, repo, ignore=shutil.ignore_patterns(".git"))
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
    )
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "corpus"]):
        run(argv, timeout=60, env=env, cwd=repo)
    return repo


def _baseline(kind: str, app_dir: Path, name: str) -> float:
    start = time.perf_counter()
    if kind == "helm":
        run([tool("helm"), "template", name, str(app_dir)], timeout=120)
    elif kind == "kustomize":
        run([tool("kubectl"), "kustomize", str(app_dir)], timeout=120)
    else:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        for path in sorted(app_dir.iterdir()):
            if path.suffix in (".yaml", ".yml", ".json") and path.is_file():
                list(yaml.load_all(path.read_text(), Loader=loader))
    return time.perf_counter() - start


async def run_render(*, workdir: Path, quick: bool) -> Result:
    from tether.model.source import ApplicationSource
    from tether.pipeline import desired_state
    from tether.render.cache import RenderCache
    from tether.render.detect import detect_type
    from tether.source import GitCache

    repo = _git_repo(workdir)
    url = f"file://{repo}"
    # As the controller runs it: one ls-remote per repository per poll interval (Argo CD's default, 180 s),
    # shared by every app on it; the separate "resolve" figure below is what one ls-remote costs.
    git = GitCache(workdir / "git-cache", **_refs_max_age(GitCache, 180.0))
    passes = 3 if quick else 5
    cached_passes = 10 if quick else 20

    def source(path: str) -> Any:
        return ApplicationSource.model_validate({"repoURL": url, "path": path, "targetRevision": "main"})

    apps: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for app_dir in sorted(p for p in repo.iterdir() if p.is_dir() and not p.name.startswith(".")):
        kind = str(getattr(detect_type(app_dir), "value", detect_type(app_dir))).lower()
        if any(app_dir.glob("*.jsonnet")) or any(app_dir.glob("*.libsonnet")):
            skipped[app_dir.name] = "jsonnet app (E4 covers directory, helm and kustomize)"
            continue
        if kind not in TYPES:
            skipped[app_dir.name] = f"{kind} app (E4 covers directory, helm and kustomize)"
            continue
        try:  # warm the git cache and check the app renders at all
            await desired_state(app_dir.name, source(app_dir.name), git=git, cache=None, secrets_backend=None)
            _baseline(kind, app_dir, app_dir.name)
        except (Exception, BenchError) as exc:
            skipped[app_dir.name] = f"does not render: {' '.join(str(exc).split())[:200]}"
            continue
        apps[app_dir.name] = kind
    if not apps:
        raise BenchError(f"no corpus app renders: {skipped}")
    log(f"E4: {len(apps)} apps ({', '.join(f'{a} [{k}]' for a, k in apps.items())}); skipped {sorted(skipped)}")

    cold: list[float] = []
    cached: list[float] = []
    per_app: dict[str, dict[str, list[float]]] = {a: {"cold": [], "cached": [], "tool": []} for a in apps}
    misses = 0
    for rep in range(passes):
        cache = RenderCache(workdir / f"render-cache-{rep}")
        total = 0.0
        for app in apps:
            start = time.perf_counter()
            await desired_state(app, source(app), git=git, cache=cache, secrets_backend=None)
            seconds = time.perf_counter() - start
            per_app[app]["cold"].append(seconds)
            total += seconds
        cold.append(total / len(apps))
        for _ in range(cached_passes // passes):
            total = 0.0
            for app in apps:
                start = time.perf_counter()
                state = await desired_state(app, source(app), git=git, cache=cache, secrets_backend=None)
                seconds = time.perf_counter() - start
                misses += 0 if state.cache_hit else 1
                per_app[app]["cached"].append(seconds)
                total += seconds
            cached.append(total / len(apps))
    resolves: list[float] = []  # one ls-remote, as a fresh process (the CLI) pays it on every call
    lister = GitCache(workdir / "git-cache")
    for _ in range(cached_passes):
        start = time.perf_counter()
        await lister.resolve(url, "main")
        resolves.append(time.perf_counter() - start)
    tools: list[float] = []
    for _ in range(passes):
        total = 0.0
        for app, kind in apps.items():
            seconds = _baseline(kind, repo / app, app)
            per_app[app]["tool"].append(seconds)
            total += seconds
        tools.append(total / len(apps))
    log(
        f"E4: per app cold {sum(cold) / len(cold) * 1e3:.1f} ms, cached {sorted(cached)[len(cached) // 2] * 1e3:.2f} ms, "
        f"tools {sorted(tools)[len(tools) // 2] * 1e3:.1f} ms; cache misses on the cached passes: {misses}"
    )
    result = Result(
        name="e4-render",
        title=f"E4: render of {len(apps)} corpus apps, mean per app, cold and cached",
        params={
            "corpus": str(CORPUS),
            "corpus_commit": (CORPUS / "SOURCE_COMMIT").read_text().strip()
            if (CORPUS / "SOURCE_COMMIT").exists()
            else "",
            "apps": apps,
            "skipped": skipped,
            "cold_passes": passes,
            "cached_passes": len(cached),
            "path": "tether.pipeline.desired_state (GitCache over file://, RenderCache), one app at a time",
            "helm": _version([tool("helm"), "version", "--short"]),
            "kubectl": _version([tool("kubectl"), "version", "--client"]),
        },
    )
    ms = [x * 1e3 for x in cold], [x * 1e3 for x in cached], [x * 1e3 for x in tools]
    result.figures["cold"] = summary(ms[0], "ms/app")
    result.figures["cached"] = summary(ms[1], "ms/app")
    result.baseline["tools"] = summary(ms[2], "ms/app")
    result.extra["git_resolve_ms"] = summary([x * 1e3 for x in resolves], "ms")
    result.ratios = {k: ratio(result.figures[k], result.baseline["tools"]) for k in ("cold", "cached")}
    result.targets = {"cached_ms_per_app": 5.0}
    result.extra["per_app_ms"] = {
        app: {k: summary([x * 1e3 for x in v], "ms")["median"] for k, v in d.items()} for app, d in per_app.items()
    }
    result.extra["cached_misses"] = misses
    return result


def _version(argv: list[str]) -> str:
    try:
        return run(argv, timeout=30).stdout.strip().splitlines()[0]
    except (BenchError, IndexError, subprocess.SubprocessError):
        return ""


def _refs_max_age(git_cache: Any, seconds: float) -> dict[str, Any]:
    """``refs_max_age`` where this engine has it (older commits, measured with ``--src``, do not)."""
    import inspect

    return {"refs_max_age": seconds} if "refs_max_age" in inspect.signature(git_cache).parameters else {}
