"""How fast is `merlin-doctor check --fast`? Median wall time and peak memory.

Measured against baselines in the same run, on the same interpreter:
  - `python -c pass` (the interpreter's own start-up),
  - `python -m torch.utils.collect_env` (PyTorch's environment report), when torch is installed.
Target (issue 2): median <= 0.25 s and peak < 60 MiB, in a venv holding the full CPU
TensorFlow stack (the default interpreter is .venv/py39, which holds it).

    python benchmarks/check_speed.py [--python PATH] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]


def measure(cmd: List[str], runs: int) -> Tuple[float, float]:
    """(median wall seconds, peak RSS MiB of the largest process in the command's tree)."""
    walls, peaks = [], []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(REPO))
        _, _, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - started)
        peaks.append(usage.ru_maxrss / 1024)
    return statistics.median(walls), max(peaks)


def has_torch(python: str) -> bool:
    return subprocess.run([python, "-c", "import torch"], capture_output=True).returncode == 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=str(REPO / ".venv" / "py39" / "bin" / "python"))
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    cases = [
        ("python -c pass", [args.python, "-c", "pass"]),
        ("merlin-doctor check --fast", [args.python, "-m", "merlin_doctor", "check", "--fast", "-q"]),
    ]
    if has_torch(args.python):
        cases.append(("torch.utils.collect_env", [args.python, "-m", "torch.utils.collect_env"]))
    else:
        print(f"(torch is not installed in {args.python}: no collect_env baseline)")
    # pip compiles bytecode when it installs a package; an editable checkout under
    # PYTHONDONTWRITEBYTECODE=1 never gets any, so compile it here as an install would.
    subprocess.run([args.python, "-m", "compileall", "-q", str(REPO / "merlin_doctor")], check=True)
    results = {name: measure(cmd, args.runs) for name, cmd in cases}
    base = results["python -c pass"][0]
    print(f"interpreter: {args.python}  runs: {args.runs}  cpus: {os.cpu_count()}")
    print(f"{'command':<30} {'median s':>9} {'x python':>9} {'peak MiB':>9}")
    for name, (wall, peak) in results.items():
        print(f"{name:<30} {wall:>9.3f} {wall / base:>9.1f} {peak:>9.1f}")
    wall, peak = results["merlin-doctor check --fast"]
    ok = wall <= 0.25 and peak < 60
    print(f"target: check --fast <= 0.25 s median and < 60 MiB peak: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
