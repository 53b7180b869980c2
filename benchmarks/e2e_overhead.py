"""What the e2e.ple check costs beyond training itself, as a ratio measured in one run.

The check: the child command exactly as the doctor runs it (`ple_command` through
`run_json_command`, progress streamed, TensorFlow's log kept, held-out metrics computed).
The baseline: a bare script, in a fresh interpreter too, that imports the same libraries,
builds the same data and the same model, and only trains it. Both skip the interpreter's
teardown (the child exits with os._exit; TensorFlow's teardown costs a plain script about 2 s),
so the ratio is the check's own overhead: the protocol, the callbacks and the held-out
evaluation. Runs alternate so that machine load hits both alike; the medians are compared.
Target: check / bare <= 1.15.

    python benchmarks/e2e_overhead.py [--python PATH] [--size quick] [--device cpu] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from merlin_doctor.e2e import DEVICES, load_spec, ple_command  # noqa: E402
from merlin_doctor.probes.isolate import run_json_command  # noqa: E402

TARGET = 1.15
TIMEOUT_S = 600

BARE = """
import os
import sys
import tensorflow as tf
from merlin.io import Dataset
from merlin_doctor.e2e.data import make_data
from merlin_doctor.e2e.ple import build_model
from merlin_doctor.e2e import load_spec

config = load_spec()["sizes"][sys.argv[1]]
if sys.argv[2] == "cpu":
    tf.config.set_visible_devices([], "GPU")
tf.random.set_seed(config["seed"])
data = make_data(config["rows"], config["seed"], config["holdout_fraction"])
model = build_model(data.schema)
model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=config["learning_rate"]), run_eagerly=False)
model.fit(Dataset(data.train, schema=data.schema), batch_size=config["batch_size"], epochs=config["epochs"], verbose=0)
os._exit(0)
"""


def time_check(python: str, size: str, device: str) -> float:
    started = time.perf_counter()
    result = run_json_command(ple_command(python, size=size, device=device), TIMEOUT_S, on_progress=lambda event: None)
    seconds = time.perf_counter() - started
    if result.get("error"):
        raise SystemExit(f"the check failed: {result['error']}")
    return seconds


def time_bare(python: str, size: str, device: str) -> float:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))))
    started = time.perf_counter()
    proc = subprocess.run(
        [python, "-c", BARE, size, device], env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"the bare script failed:\n{proc.stderr[-3000:]}")
    return seconds


def main() -> int:
    default_python = os.environ.get("MERLIN_DOCTOR_TF_PYTHON") or str(REPO / ".venv" / "py39" / "bin" / "python")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=default_python, help="the interpreter with TensorFlow and Merlin")
    parser.add_argument("--size", default="quick", choices=sorted(load_spec()["sizes"]))
    parser.add_argument("--device", default="cpu", choices=DEVICES)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    check: List[float] = []
    bare: List[float] = []
    for run in range(1, args.repeat + 1):
        bare.append(time_bare(args.python, args.size, args.device))
        check.append(time_check(args.python, args.size, args.device))
        print(f"run {run}: bare {bare[-1]:.2f} s, check {check[-1]:.2f} s", flush=True)
    ratio = statistics.median(check) / statistics.median(bare)
    print(
        f"e2e.ple {args.size} on {args.device}, median of {args.repeat}: "
        f"bare script {statistics.median(bare):.2f} s, doctor check {statistics.median(check):.2f} s, "
        f"ratio {ratio:.3f}x (target <= {TARGET}x: {'met' if ratio <= TARGET else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
