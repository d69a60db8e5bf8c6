"""``python -m bench``: start a devcluster of our own, run E1–E5, C1–C3 and W1–W3, write bench/results/*.json, stop it.

C1–C3 measure ``tether serve`` against kubectl and Flux (bench/controller.py); Flux's controllers are
built from the Go module proxy when missing, in the background while the devcluster starts, and
waited for before anything is measured. C0 (not in the default set) measures the control plane
itself: the kubectl baseline with kube-controller-manager's default and raised concurrency.
W1–W3 measure the webhook path of ``tether serve`` (bench/webhooks.py) on a devcluster of their own.

``--src DIR`` measures the Tether source in DIR (e.g. a worktree of an older commit) with this
harness: the process re-executes itself with ``PYTHONPATH=DIR`` so every ``tether`` import (and
every ``tether`` command it starts) comes from there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, BenchError, Result, engine_commit, log, machine

_REEXEC = "TETHER_BENCH_SRC"


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="N=100 only, fewer repetitions (E1 2, E2/E3 3), E5 at 1k objects, W1 5 pushes, W3 15 s.",
    )
    parser.add_argument("--src", type=Path, help="Tether source directory to measure (default: this checkout's src).")
    parser.add_argument("--out", type=Path, help="Where the result files go (default: bench/results).")
    parser.add_argument(
        "--only",
        default="E1,E2,E3,E4,E5,C1,C2,C3,W1,W2,W3",
        help="Comma-separated subset, e.g. E1,E2,E3 or C0,C1 or W1,W2,W3.",
    )
    parser.add_argument("--apps", default=None, help="Comma-separated N values for E1–E3 (default 100, full: 100,500).")
    parser.add_argument("--reps", type=int, default=None, help="E1 repetitions per variant.")
    parser.add_argument("--steady-reps", type=int, default=None, help="E2/E3 repetitions per variant.")
    parser.add_argument("--concurrency", type=int, default=10, help="In-process apps synced at once (default 10).")
    parser.add_argument("--rss-sizes", default=None, help="Comma-separated E5 object counts (full: 1000,5000,10000).")
    parser.add_argument(
        "--c-apps", default=None, help="Comma-separated N values for C0/C1 (default 100, full: 100,500,1000)."
    )
    parser.add_argument(
        "--c-reps",
        type=int,
        default=3,
        help="C1 repetitions per N of kubectl and Tether, interleaved (each a full cold start; default 3).",
    )
    parser.add_argument(
        "--flux-reps", type=int, default=1, help="C1 repetitions per N of Flux (default 1: minutes each at 1000)."
    )
    parser.add_argument(
        "--floor-reps",
        type=int,
        default=0,
        help="C1 repetitions per N of the floor controller (bench/floor.py), after kubectl's (default 0: none).",
    )
    parser.add_argument("--steady-seconds", type=float, default=None, help="C2 duration (default 600, quick 120).")
    parser.add_argument("--drift-reps", type=int, default=None, help="C3 repetitions (default 5, quick 3).")
    parser.add_argument("--poll-interval", type=float, default=120.0, help="tether serve --poll-interval in C1–C3.")
    parser.add_argument("--w-pushes", type=int, default=None, help="W1 pushes (default 20, quick 5).")
    parser.add_argument(
        "--w-load-seconds", type=float, default=None, help="W3 duration of the load (default 60, quick 15)."
    )
    parser.add_argument("--w-rate", type=float, default=50.0, help="W3 webhook deliveries a second (default 50).")
    parser.add_argument("--no-profile", action="store_true", help="Skip the pyinstrument profile of E2.")
    parser.add_argument("--no-report", action="store_true", help="Do not refresh docs/benchmarks.md.")
    parser.add_argument("--keep-cluster", action="store_true", help="Leave the devcluster running (debugging).")
    args = parser.parse_args(argv)
    if args.c_reps < 1 or args.flux_reps < 1:
        parser.error("--c-reps and --flux-reps must be at least 1")
    if not 0 <= args.floor_reps <= args.c_reps:
        parser.error("--floor-reps must be between 0 and --c-reps")
    return args


def _reexec_with_src(src: Path) -> None:
    """Run this harness again with ``PYTHONPATH=src`` (once) so ``import tether`` finds that tree."""
    src = src.resolve()
    if os.environ.get(_REEXEC) == str(src):
        return
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), str(Path(__file__).resolve().parent.parent)]))
    env[_REEXEC] = str(src)
    os.execve(sys.executable, [sys.executable, "-m", "bench", *sys.argv[1:]], env)


def _interrupt_on_sigterm() -> None:
    """SIGTERM (``kill``, a CI job's timeout) ends a run as Ctrl-C does, through every ``finally``: without
    this Python dies at once and leaves the devcluster it started running. (A background job of a
    non-interactive shell ignores SIGINT, so there TERM is the only way to stop a run.)"""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.src is not None:
        _reexec_with_src(args.src)
    _interrupt_on_sigterm()
    import logging

    import tether
    import tether.devcluster.cluster as devcluster
    import tether.log as tether_log

    tether_log.configure(logging.WARNING)  # as the command runs by default: the engine's debug logs cost time

    src = Path(tether.__file__).resolve().parent.parent
    if args.src is not None and src != args.src.resolve():
        raise BenchError(f"--src {args.src}: tether was imported from {src} instead")
    only = {part.strip().upper() for part in args.only.split(",") if part.strip()}
    quick = args.quick
    sizes = [int(x) for x in (args.apps or ("100" if quick else "100,500")).split(",")]
    reps = args.reps or (2 if quick else 5)
    steady_reps = args.steady_reps or (3 if quick else 5)
    rss_sizes = [int(x) for x in (args.rss_sizes or ("1000" if quick else "1000,5000,10000")).split(",")]
    c_sizes = [int(x) for x in (args.c_apps or ("100" if quick else "100,500,1000")).split(",")]
    if args.src is not None and args.out is None:
        raise BenchError("--src needs --out (e.g. bench/results/before), so this checkout's results stay as they are")
    out = args.out or RESULTS
    run_info: dict[str, Any] = {
        "machine": machine(),
        "commit": engine_commit(src),
        "quick": quick,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    log(f"measuring tether from {src} at {run_info['commit']['sha'][:12]}; results to {out}")
    name = f"bench-{os.getpid()}"
    started = time.perf_counter()
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
        workdir = Path(tmp)
        state = None
        flux_log = workdir / "flux-build.log"
        flux_build = None
        if only & {"C1", "C2", "C3"}:
            from bench.flux import start_build

            flux_build = start_build(flux_log)
        try:
            if only & {"E1", "E2", "E3", "E5"}:
                log(f"starting devcluster {name}")
                state = devcluster.up(name, log=lambda line: log(f"devcluster: {line}"))
            if flux_build is not None:
                from bench.flux import finish_build

                finish_build(flux_build, flux_log)  # before any measurement: a build would skew them all
            if "C0" in only:
                from bench.controller import run_control_plane

                written.append(run_control_plane(workdir=workdir, sizes=c_sizes, out=out, run_info=run_info))
            results: list[Result] = []
            if only & {"E1", "E2", "E3"}:
                from bench.syncs import run_syncs

                assert state is not None
                for n in sizes:
                    results = asyncio.run(
                        run_syncs(
                            kubeconfig=state.kubeconfig,
                            workdir=workdir,
                            n=n,
                            reps=reps,
                            steady_reps=steady_reps,
                            concurrency=args.concurrency,
                            profile_dir=None if args.no_profile or n != sizes[0] else out / "profiles",
                            only=only,
                        )
                    )
                    written += [r.write(out, run_info) for r in results]
            if "E4" in only:
                from bench.render import run_render

                result = asyncio.run(run_render(workdir=workdir, quick=quick))
                written.append(result.write(out, run_info))
            if "E5" in only:
                from bench.memory import run_memory

                assert state is not None
                result = run_memory(
                    kubeconfig=state.kubeconfig, workdir=workdir, sizes=rss_sizes, cleanup=args.keep_cluster
                )
                written.append(result.write(out, run_info))
            if only & {"C1", "C2", "C3"}:
                from bench.controller import run_controller

                if state is not None and not args.keep_cluster:  # E5's 10k objects must not weigh on C1
                    log(f"stopping devcluster {name}")
                    devcluster.down(name)
                    state = None
                name = f"{name}-c"
                log(f"starting devcluster {name}")
                state = devcluster.up(name, log=lambda line: log(f"devcluster: {line}"))
                written += run_controller(
                    kubeconfig=state.kubeconfig,
                    workdir=workdir,
                    sizes=c_sizes,
                    reps=args.c_reps,
                    flux_reps=args.flux_reps,
                    floor_reps=args.floor_reps,
                    steady_seconds=args.steady_seconds or (120.0 if quick else 600.0),
                    drift_reps=args.drift_reps or (3 if quick else 5),
                    poll_interval=args.poll_interval,
                    only=only,
                    out=out,
                    run_info=run_info,
                    control_plane=state.pids,
                )
            if only & {"W1", "W2", "W3"}:
                from bench.webhooks import run_webhooks

                if state is not None and not args.keep_cluster:  # a cluster of its own, as C1–C3 have
                    log(f"stopping devcluster {name}")
                    devcluster.down(name)
                    state = None
                name = f"bench-{os.getpid()}-w"
                log(f"starting devcluster {name}")
                state = devcluster.up(name, log=lambda line: log(f"devcluster: {line}"))
                written += run_webhooks(
                    kubeconfig=state.kubeconfig,
                    workdir=workdir,
                    pushes=args.w_pushes or (5 if quick else 20),
                    load_seconds=args.w_load_seconds or (15.0 if quick else 60.0),
                    rate=args.w_rate,
                    only=only,
                    out=out,
                    run_info=run_info,
                )
        finally:
            if state is not None and not args.keep_cluster:
                log(f"stopping devcluster {name}")
                devcluster.down(name)
    log(f"done in {time.perf_counter() - started:.0f}s: {len(written)} result files")
    if not args.no_report and args.out is None and args.src is None:
        from bench.report import refresh

        refresh()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        log(f"error: {exc}")
        sys.exit(1)
