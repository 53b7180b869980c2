"""How fast is `merlin-doctor fleet` on a 32-worker LocalCluster? Probes and judgement, end to end.

Measured in the same run, on the same interpreter (default .venv/py39, which holds dask):
  - one local `merlin-doctor facts` (median wall time of --runs runs): the baseline;
  - `merlin-doctor fleet --local 32 --json`: the cluster start-up, probing and judging all
    workers, and closing the cluster, from the timings the command reports and its wall time;
  - the same with --every-worker, where each of the 32 workers collects its own facts
    (by default workers sharing a host, interpreter and environment are probed once).
Target (issue 7): probes + judgement <= 3x one local `facts` run (the cluster start-up is
reported beside it, not counted). Exit 1 when the default run misses it.

    python benchmarks/fleet_speed.py [--python PATH] [--workers 32] [--runs 3] [--fast]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]


def wall(cmd: List[str]) -> Tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO))
    return time.perf_counter() - started, proc


def facts_time(python: str, runs: int, fast: List[str]) -> float:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            took, proc = wall([python, "-m", "merlin_doctor", "facts", "-o", os.path.join(tmp, f"{i}.json"), *fast])
            if proc.returncode != 0:
                sys.exit(f"facts failed: {proc.stderr}")
            times.append(took)
    return statistics.median(times)


def fleet_run(python: str, workers: int, extra: List[str]) -> Dict[str, float]:
    took, proc = wall([python, "-m", "merlin_doctor", "fleet", "--local", str(workers), "--json", "-q",
                       "--timeout", "600", *extra])
    if proc.returncode not in (0, 1):
        sys.exit(f"fleet failed ({proc.returncode}): {proc.stderr[-2000:]}")
    doc = json.loads(proc.stdout)
    answered = doc["summary"]["answered"]
    if answered != workers:
        sys.exit(f"only {answered} of {workers} workers answered: {proc.stdout[-2000:]}")
    t = doc["timings"]
    return {"wall": took, "start": t["cluster_start_s"], "probe": t["probe_s"], "judge": t["judge_s"],
            "close": t["cluster_close_s"],
            "probed": doc["summary"]["probed"]}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=str(REPO / ".venv" / "py39" / "bin" / "python"))
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3, help="runs of the `facts` baseline (median)")
    parser.add_argument("--fast", action="store_true", help="leave out the slow probes in both")
    args = parser.parse_args(argv)
    fast = ["--fast"] if args.fast else []
    base = facts_time(args.python, args.runs, fast)
    shared = fleet_run(args.python, args.workers, fast)
    each = fleet_run(args.python, args.workers, fast + ["--every-worker"])
    print(f"interpreter: {args.python}  cpus: {os.cpu_count()}  workers: {args.workers} (threads_per_worker=1)")
    print(f"one local `merlin-doctor facts{' --fast' if fast else ''}`: {base:.2f} s (median of {args.runs})")
    print(f"{'fleet run':<22} {'probed':>6} {'start s':>8} {'probe s':>8} {'judge s':>8} {'close s':>8} "
          f"{'wall s':>7} {'(probe+judge)/facts':>20}")
    for name, r in (("default (shared envs)", shared), ("--every-worker", each)):
        ratio = (r["probe"] + r["judge"]) / base
        print(f"{name:<22} {r['probed']:>6} {r['start']:>8.2f} {r['probe']:>8.2f} {r['judge']:>8.2f} "
              f"{r['close']:>8.2f} {r['wall']:>7.2f} {ratio:>19.1f}x")
    ok = shared["probe"] + shared["judge"] <= 3 * base
    print(f"target: probes + judgement <= 3x facts ({3 * base:.2f} s), cluster start-up "
          f"({shared['start']:.2f} s) on top: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
