"""How long `./setup_env` takes on a converged env, against the first run that built it.

Both are measured here, in one run, as a user runs them (a fresh process each time) with
the embedded rattler engine on the tests' offline channel and wheels (tests/setup_world.py).
The first run includes rattler's package extraction into an empty cache and two pip
installs; a rerun only checks each step's real state. Target: every rerun under 2 s.

    .venv/py3/bin/python benchmarks/setup_rerun.py [--reruns N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from setup_world import make_world  # noqa: E402

TARGET_S = 2.0


def timed(run):
    """(seconds, the finished process) of one run; a failed run stops the benchmark."""
    started = time.perf_counter()
    done = run()
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"setup_env failed:\n{done.stdout}\n{done.stderr}")
    return elapsed, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reruns", type=int, default=5, help="reruns to time (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="merlin-bench-") as tmp:
        world = make_world(Path(tmp) / "bench world")
        prefix = world.prefix("bench env")
        first, _ = timed(lambda: world.setup_env(prefix))
        reruns = []
        for _ in range(args.reruns):
            elapsed, done = timed(lambda: world.setup_env(prefix, "--json"))
            if json.loads(done.stdout)["outcomes"]:
                sys.exit(f"a rerun applied steps: {done.stdout}")
            reruns.append(elapsed)
    median, worst = statistics.median(reruns), max(reruns)
    print(f"first run (empty caches, env created):  {first:6.2f} s")
    print(f"rerun of the converged env (median of {len(reruns)}): {median:6.2f} s   (worst {worst:.2f} s)")
    print(f"ratio rerun / first run:                 {median / first:6.3f}")
    met = worst < TARGET_S
    print(f"target: every rerun < {TARGET_S:g} s: {'met' if met else 'NOT MET'}")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
