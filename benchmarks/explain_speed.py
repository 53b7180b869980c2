"""Throughput and peak memory of `merlin-doctor explain` on a large synthetic TensorFlow log.

Usage: python benchmarks/explain_speed.py [--mb 200]

Writes a log of mixed TensorFlow / Keras / Merlin / Dask output (about --mb megabytes) with a
few real failures planted in it to a temporary directory, then runs, each in its own
subprocess: `wc -l` and a plain Python loop over the lines (the baselines), and the real CLI
(`python -m merlin_doctor explain FILE --json`). Prints for each MB/s by wall time and by CPU
time (wall time also counts whatever else the machine is running) and peak RSS (the
process's VmHWM, sampled), the CLI's speed relative to the baselines, and whether the CLI
named the planted failures. Targets: at least 50 MB/s, under 100 MiB peak.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Tuple

REPO = Path(__file__).resolve().parents[1]
TS = "2024-03-0{d} 1{h}:{m:02d}:{s:02d}.{us:06d}: "
NOISE = [  # (weight, template) a training run's everyday output
    (
        40,
        "{n:>5}/20000 [{bar}] - ETA: {m}:{s:02d} - loss: 0.{x:04d} - auc: 0.{y:04d} - regularization_loss: 0.0000e+00",
    ),
    (
        10,
        TS
        + "I tensorflow/core/kernels/data/shuffle_dataset_op.cc:392] Filling up shuffle buffer (this may take a while): {n} of 100000",
    ),
    (8, "INFO:merlin.models:step {n} loss 0.{x:04d} auc 0.{y:04d} ndcg_at_10 0.{x:04d} recall_at_10 0.{y:04d}"),
    (8, "distributed.worker - INFO - Run out-of-band function 'lambda' on tcp://127.0.0.1:{n}"),
    (
        6,
        "WARNING:tensorflow:Gradients do not exist for variables ['embeddings/item_id_{n}:0'] when minimizing the loss.",
    ),
    (5, "Epoch {d}/10"),
    (
        4,
        TS + "W tensorflow/core/data/root_dataset.cc:247] Optimization loop failed: CANCELLED: Operation was cancelled",
    ),
    (
        3,
        "/opt/conda/envs/merlin/lib/python3.9/site-packages/merlin/io/dataset.py:{n}: UserWarning: Row group memory size ({x} bytes) of parquet file is bigger than requested part_size",
    ),
    (
        2,
        TS
        + "I tensorflow/core/common_runtime/gpu/gpu_device.cc:1616] Created device /job:localhost/replica:0/task:0/device:GPU:0 with 14626 MB memory:  -> device: 0, name: Tesla T4, pci bus id: 0000:00:04.0, compute capability: 7.5",
    ),
    (
        1,
        TS
        + "I tensorflow/stream_executor/cuda/cuda_gpu_executor.cc:980] successful NUMA node read from SysFS had negative value (-1), but there must be at least one NUMA node, so returning NUMA node zero",
    ),
]
PLANTED = [  # (fraction of the file, expected id, line)
    (
        0.1,
        "cuda-libs-missing",
        TS
        + "W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library 'libcusparse.so.11'; dlerror: libcusparse.so.11: cannot open shared object file: No such file or directory",
    ),
    (
        0.3,
        "host-oom",
        TS
        + "E tensorflow/stream_executor/cuda/cuda_driver.cc:802] failed to alloc 34359738368 bytes on host: CUDA_ERROR_OUT_OF_MEMORY: out of memory",
    ),
    (
        0.6,
        "gpu-oom",
        "tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating tensor with shape[8192,131072] and type float on /job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc",
    ),
    (
        0.9,
        "cudnn-init-failed",
        TS
        + "E tensorflow/stream_executor/cuda/cuda_dnn.cc:361] Could not create cudnn handle: CUDNN_STATUS_INTERNAL_ERROR",
    ),
]


def _render(template: str, rng: random.Random) -> str:
    n = rng.randrange(1, 20000)
    return template.format(
        n=n,
        bar="=" * (n % 29) + ">" + "." * (29 - n % 29),
        d=rng.randrange(1, 10),
        h=rng.randrange(10),
        m=rng.randrange(60),
        s=rng.randrange(60),
        us=rng.randrange(10**6),
        x=rng.randrange(10**4),
        y=rng.randrange(10**4),
    )


def write_log(path: Path, megabytes: int) -> List[Tuple[int, str]]:
    """Write the synthetic log; return (line number, expected id) of each planted failure."""
    rng = random.Random(6)
    weights = [w for w, _ in NOISE]
    pool = [_render(t, rng) + "\n" for t in rng.choices([t for _, t in NOISE], weights, k=20000)]
    target, written, line, planted = megabytes * 10**6, 0, 0, []
    pending = list(PLANTED)
    with open(path, "w", encoding="utf-8") as out:
        while written < target:
            chunk = rng.choices(pool, k=5000)
            if pending and written >= pending[0][0] * target:
                fraction, expected, template = pending.pop(0)
                chunk.insert(0, _render(template, rng) + "\n")
                planted.append((line + 1, expected))
            text = "".join(chunk)
            out.write(text)
            written += len(text)
            line += len(chunk)
    return planted


def _peak_kib(pid: int) -> int:
    """The process's resident high-water mark so far (0 once it has exited or without /proc)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            return next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
    except OSError:
        return 0


def measure(cmd: List[str], output: Path) -> Tuple[float, float, float]:
    """Run cmd with stdout to `output`; return (wall seconds, CPU seconds, peak RSS MiB) of it alone."""
    peak = 0
    with open(output, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, cwd=str(REPO))
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, _peak_kib(proc.pid))
            time.sleep(0.005)
        wall = time.perf_counter() - start
    proc.returncode = status  # reaped above; keeps Popen from waiting again
    return wall, usage.ru_utime + usage.ru_stime, peak / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the synthetic log in MB (default 200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "train.log"
        planted = write_log(log, args.mb)
        size_mb = log.stat().st_size / 10**6
        loop = "import sys\nn = 0\nfor _ in open(sys.argv[1], 'rb'):\n    n += 1\nprint(n)"
        runs = [
            ("wc -l", ["wc", "-l", str(log)]),
            ("python line loop", [sys.executable, "-c", loop, str(log)]),
            ("merlin-doctor explain", [sys.executable, "-m", "merlin_doctor", "explain", str(log), "--json"]),
        ]
        print(f"synthetic log: {size_mb:.0f} MB, planted failures at lines {', '.join(str(n) for n, _ in planted)}")
        speeds = {}
        for name, cmd in runs:
            wall, cpu, peak = measure(cmd, Path(tmp) / "out")
            speeds[name] = size_mb / max(cpu, 1e-3)
            shown_peak = f"{peak:6.1f} MiB" if peak else "  (too short to sample)"
            print(
                f"  {name:<22} wall {wall:6.2f} s = {size_mb / wall:7.1f} MB/s   "
                f"cpu {cpu:6.2f} s = {speeds[name]:7.1f} MB/s   peak RSS {shown_peak}"
            )
        report = json.loads((Path(tmp) / "out").read_text())
    explain = speeds["merlin-doctor explain"]
    print(
        f"explain: {explain:.1f} MB/s of CPU time = {explain / speeds['python line loop']:.2f}x the Python line loop, "
        f"{explain / speeds['wc -l']:.3f}x wc -l (target >= 50 MB/s, peak < 100 MiB)"
    )
    found = {(e["line"], m["id"]) for m in report["matches"] for e in m["evidence"]}
    missing = [f"{expected} at line {n}" for n, expected in planted if (n, expected) not in found]
    print("planted failures: " + ("all named with their lines" if not missing else "MISSING " + "; ".join(missing)))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
