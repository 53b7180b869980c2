"""How fast is `merlin-doctor fleet` on a 32-worker LocalCluster? Probes and judgement, end to end.

Measured in the same run, on the same interpreter (default .venv/py39, which holds dask):
  1. one local `merlin-doctor facts` on the idle machine (median of --runs);
  2. the start-up of a LocalCluster of --workers processes (threads_per_worker=1);
  3. with that cluster up: one local `merlin-doctor facts` again (its idle workers share the CPUs),
     and `merlin-doctor fleet --scheduler ADDRESS --json`, the whole command (interpreter start,
     connect, probes on every worker, judgement, table), by default and with --every-worker.
By default workers sharing a host, interpreter and environment are probed once; --every-worker
makes each of the 32 collect its own facts.
Target (issue 7): "probes and judgement end to end" at most 3x one local `facts` run, with the
cluster start-up on top. Judged on the default run's probes + judgement (from the command's
own timings), against `facts` measured with the cluster up (same load); the whole command,
which also starts Python and imports dask.distributed (a client's share of getting a cluster),
is printed beside it, as is the idle `facts`. Exit 1 when the default run misses the target. Both leave out the slow probes (importing TensorFlow,
training the reference model: 32 trainings on one machine measure the machine, not the fleet)
unless --slow.

    python benchmarks/fleet_speed.py [--python PATH] [--workers 32] [--runs 3] [--slow]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]


def median_wall(cmd: List[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO))
        times.append(time.perf_counter() - started)
        if proc.returncode not in (0, 1):
            sys.exit(f"{' '.join(cmd[2:5])} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return statistics.median(times)


def fleet_run(python: str, address: str, workers: int, extra: List[str]) -> Dict[str, Any]:
    started = time.perf_counter()
    proc = subprocess.run(
        [python, "-m", "merlin_doctor", "fleet", "--scheduler", address, "--json", "-q", "--timeout", "600", *extra],
        capture_output=True,
        text=True,
        cwd=str(REPO),
    )
    took = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"fleet failed ({proc.returncode}): {proc.stderr[-2000:]}")
    doc = json.loads(proc.stdout)
    if doc["summary"]["answered"] != workers:
        sys.exit(f"only {doc['summary']['answered']} of {workers} workers answered")
    return dict(doc["timings"], wall=took, probed=doc["summary"]["probed"])


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=str(REPO / ".venv" / "py39" / "bin" / "python"))
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3, help="runs of each `facts` measurement (median)")
    parser.add_argument("--slow", action="store_true", help="include the slow probes (TensorFlow, training) in both")
    args = parser.parse_args(argv)
    from distributed import Client, LocalCluster

    fast = [] if args.slow else ["--fast"]
    with tempfile.TemporaryDirectory() as tmp:
        facts_cmd = [args.python, "-m", "merlin_doctor", "facts", "-o", os.path.join(tmp, "f.json"), *fast]
        idle = median_wall(facts_cmd, args.runs)
        started = time.perf_counter()
        cluster = LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        )
        client = Client(cluster)
        start = time.perf_counter() - started
        try:
            loaded = median_wall(facts_cmd, args.runs)
            dask_import = median_wall([args.python, "-c", "import distributed"], args.runs)
            shared = fleet_run(args.python, cluster.scheduler_address, args.workers, fast)
            each = fleet_run(args.python, cluster.scheduler_address, args.workers, fast + ["--every-worker"])
        finally:
            client.close()
            cluster.close()
    print(f"interpreter: {args.python}  cpus: {os.cpu_count()}  workers: {args.workers} (threads_per_worker=1)")
    print(f"cluster start-up: {start:.2f} s")
    print(
        f"one local `merlin-doctor facts{' --fast' if fast else ''}`: {idle:.2f} s on the idle machine, "
        f"{loaded:.2f} s with the cluster up (median of {args.runs})"
    )
    print(
        f"{'fleet --scheduler':<22} {'probed':>6} {'probe s':>8} {'judge s':>8} {'command s':>10} "
        f"{'x facts':>8} {'x idle facts':>13}"
    )
    for name, r in (("default", shared), ("--every-worker", each)):
        print(
            f"{name:<22} {r['probed']:>6} {r['probe_s']:>8.2f} {r['judge_s']:>8.2f} {r['wall']:>10.2f} "
            f"{r['wall'] / loaded:>7.1f}x {r['wall'] / idle:>12.1f}x"
        )
    print(
        f"(of each fleet command, starting Python and importing dask.distributed takes {dask_import:.2f} s; "
        f"probes + judgement of the default run: {shared['probe_s'] + shared['judge_s']:.2f} s = "
        f"{(shared['probe_s'] + shared['judge_s']) / loaded:.1f}x facts)"
    )
    judged = shared["probe_s"] + shared["judge_s"]
    ok = judged <= 3 * loaded
    print(
        f"target: probes + judgement ({judged:.2f} s) <= 3x facts ({3 * loaded:.2f} s), plus the cluster "
        f"start-up ({start:.2f} s): {'met' if ok else 'NOT met'}; the whole command: {shared['wall']:.2f} s"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
