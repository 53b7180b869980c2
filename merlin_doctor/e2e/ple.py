"""Train the article's PLE model on planted-signal data and print what happened as JSON.

Run as a child process under the target environment's Python:

    python -m merlin_doctor.e2e.ple --size quick --device auto [--sabotage shuffle-labels|lr0]
                                    [--progress] [--out FILE]

One JSON object goes to stdout (or FILE); `PROGRESS {json}` lines go to stderr as the run
advances; TensorFlow's own log lines stay on stderr for the parent to keep as evidence.
A failure at any stage is reported in the JSON (`error`), never as a traceback alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Any, Dict, List, Optional

from merlin_doctor.e2e import DEVICES, SABOTAGES, load_spec
from merlin_doctor.probes.child_io import (
    Progress,
    emit,
    error_data,
    hard_exit,
    stdout_to_stderr,
)

SCHEMA_VERSION = 1


def build_model(schema: Any) -> Any:
    """The article's model, exactly (shared/seed: "PLE Architecture")."""
    import merlin.models.tf as mm

    inputs = mm.InputBlockV2(schema)
    output_block = mm.OutputBlock(schema, task_blocks=mm.MLPBlock([32]))
    ple = mm.PLEBlock(
        num_layers=2,
        outputs=output_block,
        expert_block=mm.MLPBlock([64]),
        num_task_experts=2,
        num_shared_experts=3,
    )
    return mm.Model(inputs, ple, output_block)


def train(size: str, device: str, sabotage: Optional[str], progress: Progress) -> Dict[str, Any]:
    """Run every stage, recording each one's outcome; an exception ends the run as data."""
    started = time.perf_counter()
    spec = load_spec()
    config = dict(spec["sizes"][size])
    result: Dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "check": "e2e.ple",
        "size": size,
        "sabotage": sabotage,
        "config": config,
        "python": platform.python_version(),
        "versions": {},
        "device": {"requested": device, "used": None},
        "data": None,
        "learning_rate": None,
        "timings": {},
        "first_batch_loss": None,
        "curve": [],
        "metrics": {},
        "examples_per_s": None,
        "gpu_memory": None,
        "error": None,
    }
    timings = result["timings"]
    memory: Optional[_GpuMemory] = None
    stage = "import"
    try:
        mark = _stage(progress, stage)
        import merlin.models
        import numpy as np
        import tensorflow as tf
        from merlin.io import Dataset

        from merlin_doctor.e2e import data as planted

        timings["import_s"] = _since(mark)
        result["versions"] = {
            "tensorflow": tf.__version__,
            "merlin_models": merlin.models.__version__,
            "numpy": np.__version__,
        }

        stage = "device"
        result["device"].update(_select_device(tf, device))
        memory = _GpuMemory(tf) if result["device"]["used"] == "gpu" else None

        stage = "data"
        mark = _stage(progress, stage)
        tf.random.set_seed(config["seed"])
        data = planted.make_data(config["rows"], config["seed"], config["holdout_fraction"])
        train_frame = data.train
        if sabotage == "shuffle-labels":
            train_frame = planted.shuffle_targets(train_frame, list(data.tasks), config["seed"])
        train_set = Dataset(train_frame, schema=data.schema)
        holdout_set = Dataset(data.holdout, schema=data.schema)
        result["data"] = {
            "schema": planted.SCHEMA_NAME,
            "train_rows": len(data.train),
            "holdout_rows": len(data.holdout),
            "tasks": data.tasks,
            "planted": planted.PLANTED,
        }
        timings["data_s"] = _since(mark)

        stage = "build"
        mark = _stage(progress, stage)
        model = build_model(data.schema)
        learning_rate = 0.0 if sabotage == "lr0" else config["learning_rate"]
        model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate), run_eagerly=False)
        result["learning_rate"] = learning_rate
        timings["build_s"] = _since(mark)

        stage = "fit"
        mark = _stage(progress, stage)
        logger = _epoch_logger(tf, result, len(data.train), config["epochs"], progress, memory)
        model.fit(train_set, batch_size=config["batch_size"], epochs=config["epochs"], verbose=0, callbacks=[logger])
        timings["fit_s"] = _since(mark)
        result["examples_per_s"] = _steady_rate(result["curve"])

        stage = "evaluate"
        mark = _stage(progress, stage)
        predictions = _predict(model, holdout_set, config["batch_size"])
        result["metrics"] = _holdout_metrics(planted, data, predictions)
        timings["evaluate_s"] = _since(mark)
    except Exception as exc:  # every failure, including a missing GPU, is reported as data
        result["error"] = error_data(exc, stage)
    if memory is not None:  # also after a failure: an out-of-memory run shows how far it got
        result["gpu_memory"] = memory.report()
    result["wall_s"] = _since(started)
    progress("done", wall_s=result["wall_s"], error=bool(result["error"]))
    return result


def _stage(progress: Progress, stage: str) -> float:
    progress("stage", stage=stage)
    return time.perf_counter()


def _since(mark: float) -> float:
    return round(time.perf_counter() - mark, 3)


def _select_device(tf: Any, requested: str) -> Dict[str, Any]:
    """Hide the GPUs for `cpu`; `gpu` without one is an error; `auto` takes a GPU when TF sees one."""
    gpus = tf.config.list_physical_devices("GPU")
    names = [g.name for g in gpus]
    if requested == "gpu" and not gpus:
        raise RuntimeError("--device gpu: no GPU visible to TensorFlow")
    if requested == "cpu" or not gpus:
        tf.config.set_visible_devices([], "GPU")
        return {"used": "cpu", "gpus_visible": names}
    for gpu in gpus:  # so that NVML's figure is what training used, not TF's up-front grab
        tf.config.experimental.set_memory_growth(gpu, True)
    return {"used": "gpu", "gpus_visible": names}


def _epoch_logger(
    tf: Any, result: Dict[str, Any], rows: int, epochs: int, progress: Progress, memory: Optional[_GpuMemory]
) -> Any:
    """A Keras callback that records the untrained model's loss (`first_batch_loss`: the
    first batch is scored before its update) and appends each epoch's losses and speed to `curve`."""

    class EpochLogger(tf.keras.callbacks.Callback):
        _supports_tf_logs = True  # batch logs stay tensors: no device sync on every step

        def on_train_batch_end(self, batch, logs=None):
            if result["first_batch_loss"] is None and logs and "loss" in logs:
                result["first_batch_loss"] = float(logs["loss"])

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.started
            logs = logs or {}
            point = {
                "epoch": epoch + 1,
                "loss": float(logs.get("loss", float("nan"))),
                "task_losses": {k.split("/")[0]: float(v) for k, v in logs.items() if k.endswith("_loss") and "/" in k},
                "seconds": round(seconds, 3),
                "examples_per_s": round(rows / seconds, 1) if seconds > 0 else None,
            }
            result["curve"].append(point)
            if memory is not None:
                memory.sample()
            progress("epoch", epochs=epochs, **{k: point[k] for k in ("epoch", "loss", "seconds", "examples_per_s")})

    return EpochLogger()


def _steady_rate(curve: List[Dict[str, Any]]) -> Optional[float]:
    """Examples/s after the first epoch, which also pays for tracing the graph."""
    steady = curve[1:] or curve
    seconds = sum(p["seconds"] for p in steady)
    rows = sum(p["examples_per_s"] * p["seconds"] for p in steady if p["examples_per_s"])
    return round(rows / seconds, 1) if seconds > 0 else None


def _predict(model: Any, dataset: Any, batch_size: int) -> Dict[str, Any]:
    """Held-out predictions by eager forward passes, in row order: the same numbers as
    `model.predict`, without the 1-3 s it spends tracing one more graph."""
    import numpy as np
    from merlin.models.tf import Loader

    parts: Dict[str, List[Any]] = {}
    for features, _ in Loader(dataset, batch_size=batch_size, shuffle=False):
        for key, value in model(features, training=False).items():
            parts.setdefault(key, []).append(np.asarray(value).ravel())
    return {key: np.concatenate(values) for key, values in parts.items()}


def _holdout_metrics(planted: Any, data: Any, predictions: Dict[str, Any]) -> Dict[str, Any]:
    """Per task on the held-out rows: AUC (binary) or RMSE with the label's std (regression)."""
    by_task = {key.split("/")[0]: value for key, value in predictions.items()}
    metrics: Dict[str, Any] = {}
    for task, kind in data.tasks.items():
        labels = data.holdout[task].to_numpy().astype("float64")
        scores = by_task.get(task)
        entry: Dict[str, Any] = {"type": kind, "ceiling": data.ceilings[task]}
        if scores is None:
            entry["error"] = f"the model made no prediction for {task} (outputs: {sorted(predictions)})"
        elif len(scores) != len(labels):
            entry["error"] = f"{len(scores)} predictions for {len(labels)} held-out rows"
        elif kind == "binary":
            entry.update(auc=planted.auc(labels, scores), positive_rate=float(labels.mean()))
        else:
            error, spread = planted.rmse(labels, scores), float(labels.std())
            entry.update(rmse=error, label_std=spread, rmse_over_std=error / spread if spread else float("nan"))
        metrics[task] = entry
    return metrics


class _GpuMemory:
    """Peak GPU memory of this process: NVML samples (if pynvml imports) and TF's allocator peak."""

    def __init__(self, tf: Any):
        self.tf = tf
        self.process_mb: Optional[float] = None
        self.device_mb: Optional[float] = None
        self.error: Optional[str] = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
        except Exception as exc:  # no NVML: TensorFlow's own allocator figure remains
            self.nvml = None
            self.error = f"{type(exc).__name__}: {exc}"

    def sample(self) -> None:
        """Called from training callbacks: an NVML failure is recorded, never raised into `fit`."""
        if self.nvml is None:
            return
        nvml, pid = self.nvml, os.getpid()
        process = device = 0.0
        try:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                device += nvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
                process += sum(
                    (p.usedGpuMemory or 0) / 2**20
                    for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle)
                    if p.pid == pid
                )
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return
        self.device_mb = max(self.device_mb or 0.0, device)
        if process:  # zero when the PID is not visible to NVML (containers): unknown, not zero
            self.process_mb = max(self.process_mb or 0.0, process)

    def report(self) -> Dict[str, Any]:
        self.sample()
        try:
            tf_peak: Optional[float] = self.tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
        except Exception:
            tf_peak = None
        return {
            "nvml_process_peak_mb": self.process_mb,
            "nvml_device_used_peak_mb": self.device_mb,
            "tf_peak_mb": tf_peak,
            "nvml_error": self.error,
        }


def main(argv: Optional[List[str]] = None) -> int:
    try:
        sizes = sorted(load_spec()["sizes"])
    except ImportError as exc:  # this runs in the judged env's Python (check --prefix), which may lack PyYAML
        emit(
            {
                "error": f"{sys.executable} cannot import {exc.name}, which the PLE check needs in the env: "
                f"{sys.executable} -m pip install pyyaml"
            },
            None,
        )
        return 1
    parser = argparse.ArgumentParser(prog="python -m merlin_doctor.e2e.ple", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sizes, default="quick")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--sabotage", choices=SABOTAGES, help="break training on purpose (tests the judge)")
    parser.add_argument("--progress", action="store_true", help="PROGRESS {json} lines on stderr")
    parser.add_argument("--out", help="write the JSON here (atomically) instead of stdout")
    args = parser.parse_args(argv)
    with stdout_to_stderr():
        result = train(args.size, args.device, args.sabotage, Progress(args.progress))
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    hard_exit(main())
