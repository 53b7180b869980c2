"""The PLE end-to-end check and the TensorFlow child: real TF 2.10 / Merlin 23.08 on the CPU,
plus pure tests of the PLE judge on hand-made results."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import types
from typing import Any, Dict, List

import pytest
from conftest import REPO

from merlin_doctor import knowledge
from merlin_doctor.e2e import ple_command
from merlin_doctor.e2e.judge import judge_ple
from merlin_doctor.e2e.ple import _GpuMemory, _select_device
from merlin_doctor.probes.isolate import run_json_command
from merlin_doctor.verdict import Status

THRESHOLDS = knowledge.load("e2e")["ple"]
CHILD_TIMEOUT = 180


def _run_ple(python: str, **options: Any) -> Dict[str, Any]:
    """The child as the doctor runs it, with its progress events kept under `progress`."""
    events: List[Dict[str, Any]] = []
    result = run_json_command(ple_command(python, **options), CHILD_TIMEOUT, on_progress=events.append)
    result["progress"] = events
    return result


@pytest.fixture(scope="module")
def ple_cpu(tf_python: str) -> Dict[str, Any]:
    return _run_ple(tf_python, size="quick", device="cpu")


@pytest.fixture(scope="module")
def tf_facts(tf_python: str) -> Dict[str, Any]:
    return run_json_command([tf_python, "-m", "merlin_doctor.probes.tf_child", "--progress"], CHILD_TIMEOUT)


# --- the real PLE run ---------------------------------------------------------------------------


@pytest.mark.slow
def test_ple_quick_learns_on_the_cpu(ple_cpu):
    assert ple_cpu["error"] is None, ple_cpu.get("log", [])[-20:]
    status, summary, evidence = judge_ple(ple_cpu, THRESHOLDS)
    assert status is Status.PASS, summary
    assert ple_cpu["device"]["used"] == "cpu" and ple_cpu["versions"]["tensorflow"] == "2.10.0"
    assert evidence["reasons"] == [] and len(evidence["curve"]) == ple_cpu["config"]["epochs"]
    for task, entry in ple_cpu["metrics"].items():
        assert entry["type"] in ("binary", "regression"), task
    assert ple_cpu["examples_per_s"] > 0 and ple_cpu["gpu_memory"] is None


@pytest.mark.slow
def test_ple_reports_progress_per_epoch_and_keeps_tf_log_lines(ple_cpu):
    epochs = [e for e in ple_cpu["progress"] if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == list(range(1, ple_cpu["config"]["epochs"] + 1))
    assert all(e["examples_per_s"] > 0 for e in epochs)
    assert not any(line.startswith("PROGRESS ") for line in ple_cpu["log"])
    assert any("libcudart.so.11.0" in line for line in ple_cpu["log"])


@pytest.mark.slow
def test_ple_with_shuffled_labels_fails_on_held_out_auc(tf_python):
    result = _run_ple(tf_python, size="quick", device="cpu", sabotage="shuffle-labels")
    status, summary, evidence = judge_ple(result, THRESHOLDS)
    assert status is Status.FAIL and "did not learn" in summary
    below = [r for r in evidence["reasons"] if " auc " in r and "< 0.75" in r]
    assert len(below) == 4, evidence["reasons"]
    assert any(r.startswith("watching_times rmse_over_std") for r in evidence["reasons"])
    assert all(abs(evidence["metrics"][t]["auc"] - 0.5) < 0.2 for t in ("click", "follow", "like", "share"))


@pytest.mark.slow
def test_ple_with_learning_rate_zero_fails_on_a_flat_loss(tf_python):
    result = _run_ple(tf_python, size="quick", device="cpu", sabotage="lr0")
    status, summary, evidence = judge_ple(result, THRESHOLDS)
    assert status is Status.FAIL
    assert result["learning_rate"] == 0.0
    assert evidence["reasons"][0].startswith("the training loss did not decrease"), evidence["reasons"]
    losses = [p["loss"] for p in evidence["curve"]]
    assert max(losses) - min(losses) < 1e-3 * losses[0], "the weights never moved"
    assert abs(evidence["first_batch_loss"] - losses[0]) < 0.1 * losses[0]


@pytest.mark.slow
def test_ple_on_a_gpu_that_is_not_there_is_an_error_as_data(tf_python):
    result = _run_ple(tf_python, size="quick", device="gpu")
    assert result["error"]["stage"] == "device" and "no GPU visible" in result["error"]["message"]
    status, summary, evidence = judge_ple(result, THRESHOLDS)
    assert status is Status.FAIL and "no GPU visible to TensorFlow" in summary
    assert evidence["log_tail"], "the TF log that explains a missing GPU is kept"


# --- the real TensorFlow child ------------------------------------------------------------------


@pytest.mark.slow
def test_tf_child_reports_this_cpu_only_machine(tf_facts):
    assert tf_facts["import"]["ok"] and tf_facts["import"]["version"] == "2.10.0"
    assert tf_facts["build_info"]["info"]["is_cuda_build"] is True
    assert tf_facts["devices"]["GPU"] == [] and len(tf_facts["devices"]["CPU"]) == 1
    tests = tf_facts["tests"]
    assert tests["matmul"]["ok"] and tests["matmul"]["cpu"]["rel_err_vs_numpy"] < 1e-4
    assert tests["matmul"]["gpus"] == {"ok": None, "skipped": "no GPU visible to TensorFlow"}
    assert tests["conv"]["skipped"] == "no GPU visible to TensorFlow"
    assert tests["xla"]["ok"] and tests["xla"]["cpu"]["rel_err"] < 1e-4
    assert tests["xla"]["gpus"]["skipped"] == "no GPU visible to TensorFlow"
    trt = tests["tensorrt"]
    assert trt["enabled"] is False and trt["linked_version"] == "7.2.2"
    assert trt["loaded_version"]["ok"] is None and trt["trt_convert"]["ok"] is True
    imports = tf_facts["imports"]
    assert imports["nvtabular"]["ok"] and imports["merlin.models.tf"]["version"].startswith("23.08")
    assert imports["cudf"] == {**imports["cudf"], "ok": False, "error": "ModuleNotFoundError: No module named 'cudf'"}


@pytest.mark.slow
def test_tf_child_keeps_tensorflows_own_log_lines(tf_facts):
    log = "\n".join(tf_facts["log"])
    assert "Could not load dynamic library 'libcudart.so.11.0'" in log
    assert "Could not load dynamic library 'libnvinfer.so.7'" in log
    assert "failed call to cuInit" in log


@pytest.mark.slow
def test_tf_child_writes_to_out_and_nothing_to_stdout(tf_python, tmp_path):
    out = tmp_path / "tf.json"
    proc = subprocess.run(
        [tf_python, "-m", "merlin_doctor.probes.tf_child", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        cwd=str(REPO),
    )
    assert proc.returncode == 0 and proc.stdout == ""
    assert json.loads(out.read_text())["import"]["ok"] is True


def test_the_child_modules_import_nothing_heavy(tf_python):
    """The doctor imports these modules; TF, Merlin and dask load only inside the children's main()."""
    code = (
        "import sys, merlin_doctor.e2e, merlin_doctor.e2e.data, merlin_doctor.e2e.ple, "
        "merlin_doctor.e2e.judge, merlin_doctor.probes.tf_child, merlin_doctor.probes.child_io; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'tensorflow', 'merlin', 'dask', 'numpy', 'pandas', 'nvtabular', 'cudf'}))"
    )
    proc = subprocess.run([tf_python, "-c", code], capture_output=True, text=True, timeout=60, cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# --- the judge, on hand-made results ------------------------------------------------------------


def _result(**changes: Any) -> Dict[str, Any]:
    """A passing quick run on the CPU, as the child prints it."""
    result = {
        "size": "quick",
        "sabotage": None,
        "error": None,
        "examples_per_s": 18000.0,
        "wall_s": 19.5,
        "first_batch_loss": 10.4,
        "device": {"requested": "auto", "used": "cpu", "gpus_visible": []},
        "gpu_memory": None,
        "curve": [
            {"epoch": 1, "loss": 7.0},
            {"epoch": 2, "loss": 3.3},
            {"epoch": 3, "loss": 2.4},
            {"epoch": 4, "loss": 2.1},
        ],
        "metrics": {
            "click": {"type": "binary", "auc": 0.90, "positive_rate": 0.5, "ceiling": 0.91},
            "follow": {"type": "binary", "auc": 0.89, "positive_rate": 0.5, "ceiling": 0.91},
            "like": {"type": "binary", "auc": 0.88, "positive_rate": 0.5, "ceiling": 0.90},
            "share": {"type": "binary", "auc": 0.87, "positive_rate": 0.5, "ceiling": 0.90},
            "watching_times": {
                "type": "regression",
                "rmse": 0.6,
                "label_std": 1.25,
                "rmse_over_std": 0.48,
                "ceiling": 0.45,
            },
        },
    }
    result.update(copy.deepcopy(changes))
    return result


def _with_metric(task: str, **fields: Any) -> Dict[str, Any]:
    result = _result()
    result["metrics"][task].update(fields)
    return result


def test_judge_passes_a_run_that_learned():
    status, summary, evidence = judge_ple(_result(), THRESHOLDS)
    assert status is Status.PASS
    assert summary.startswith("PLE (quick, cpu) learned every task: loss 10.4 -> 2.1, click AUC 0.900")
    assert "watching_times RMSE/std 0.48" in summary and "18,000 examples/s" in summary
    assert evidence["reasons"] == [] and evidence["thresholds"] == THRESHOLDS


def test_judge_fails_a_nan_metric_written_as_nan_or_as_null():
    for value in (math.nan, None):
        status, summary, evidence = judge_ple(_with_metric("like", auc=value), THRESHOLDS)
        assert status is Status.FAIL and evidence["reasons"] == ["like auc is NaN"], value
    status, _, evidence = judge_ple(_with_metric("watching_times", label_std=math.nan), THRESHOLDS)
    assert status is Status.FAIL and evidence["reasons"] == ["watching_times label_std is NaN"]


def test_judge_fails_a_nan_loss_with_the_epoch():
    curve = [{"epoch": 1, "loss": 7.0}, {"epoch": 2, "loss": math.nan}, {"epoch": 3, "loss": None}]
    status, summary, evidence = judge_ple(_result(curve=curve), THRESHOLDS)
    assert status is Status.FAIL
    assert "the training loss is NaN or missing at epoch 2, 3" in summary
    assert evidence["curve"] == curve


def test_judge_fails_a_loss_that_does_not_decrease_from_the_first_batch():
    curve = [{"epoch": 1, "loss": 10.7}, {"epoch": 2, "loss": 10.7}, {"epoch": 3, "loss": 10.69}]
    status, summary, evidence = judge_ple(_result(curve=curve, first_batch_loss=10.43), THRESHOLDS)
    assert status is Status.FAIL
    assert evidence["reasons"] == ["the training loss did not decrease: 10.43 -> 10.69 (+2.5%; needs -20% or lower)"]


def test_judge_without_the_first_batch_loss_compares_epochs():
    curve = [{"epoch": 1, "loss": 7.0}, {"epoch": 2, "loss": 6.5}]
    _, _, evidence = judge_ple(_result(curve=curve, first_batch_loss=None), THRESHOLDS)
    assert evidence["reasons"] == ["the training loss did not decrease: 7 -> 6.5 (-7.1%; needs -20% or lower)"]
    status, _, evidence = judge_ple(_result(curve=[{"epoch": 1, "loss": 7.0}], first_batch_loss=None), THRESHOLDS)
    assert status is Status.FAIL and "too few" in evidence["reasons"][0]


def test_judge_fails_every_task_below_its_threshold_and_shows_the_metrics():
    result = _result()
    for task in ("click", "follow", "like", "share"):
        result["metrics"][task]["auc"] = 0.52
    result["metrics"]["watching_times"]["rmse_over_std"] = 1.01
    status, summary, evidence = judge_ple(result, THRESHOLDS)
    assert status is Status.FAIL
    assert summary == (
        "PLE (quick, cpu) did not learn: click auc 0.520 < 0.75; follow auc 0.520 < 0.75; "
        "like auc 0.520 < 0.75 (+2 more)"
    )
    assert evidence["reasons"][-1] == "watching_times rmse_over_std 1.010 > 0.75"
    assert evidence["metrics"] == result["metrics"]


def test_judge_fails_missing_tasks_and_tasks_without_a_threshold():
    result = _result()
    result["metrics"]["extra"] = result["metrics"].pop("share")
    result["metrics"]["click"] = {"type": "binary", "error": "the model made no prediction for click"}
    _, _, evidence = judge_ple(result, THRESHOLDS)
    assert evidence["reasons"] == [
        "extra: no threshold for this task",
        "click: the model made no prediction for click",
        "share: no held-out metrics",
    ]


def test_judge_fails_a_run_that_stopped_with_its_error_and_log():
    error = {"type": "RuntimeError", "stage": "device", "message": "--device gpu: no GPU visible to TensorFlow"}
    result = _result(error=error, curve=[], metrics={}, log=["W ... failed call to cuInit: UNKNOWN ERROR (303)"])
    status, summary, evidence = judge_ple(result, THRESHOLDS)
    assert status is Status.FAIL
    assert (
        summary
        == "PLE run (quick, cpu) did not finish: RuntimeError at stage device: --device gpu: no GPU visible to TensorFlow"
    )
    assert evidence["error"] == error and evidence["log_tail"] == result["log"]


def test_judge_fails_a_child_that_timed_out_as_the_parent_reports_it():
    result = {"error": "timed out after 60 s (the child was killed)", "timed_out": True, "log": ["epoch 1"]}
    status, summary, _ = judge_ple(result, THRESHOLDS)
    assert status is Status.FAIL and summary == "PLE run did not finish: timed out after 60 s (the child was killed)"


def test_judge_rejects_a_threshold_it_cannot_read():
    thresholds = {"loss_decrease_min": 0.05, "tasks": {"click": {"auc_at_least": 0.7}}}
    with pytest.raises(ValueError, match="auc_at_least"):
        judge_ple(_result(metrics={"click": {"type": "binary", "auc": 0.9}}), thresholds)


# --- the GPU code paths, on stand-ins -----------------------------------------------------------


@pytest.mark.slow
def test_tf_child_gpu_comparisons_run_on_a_stand_in_device(tf_python):
    """The per-GPU matmul/conv/XLA code, pointed at the CPU and at a GPU that is not there."""
    code = (
        "import json, tensorflow as tf; from merlin_doctor.probes import tf_child as t; "
        "from merlin_doctor.probes.child_io import finite; devices = ['/device:CPU:0', '/device:GPU:7']; "
        "print(json.dumps(finite({name: t.guarded(lambda: test(tf, devices)) for name, test in "
        "(('matmul', t._matmul), ('conv', t._conv), ('xla', t._xla))})))"
    )
    proc = subprocess.run([tf_python, "-c", code], capture_output=True, text=True, timeout=CHILD_TIMEOUT, cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr[-3000:]
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("matmul", "conv", "xla"):
        on_cpu, on_missing_gpu = facts[name]["gpus"]
        assert on_cpu["ok"] and on_cpu["rel_err"] < 1e-4, (name, on_cpu)
        # TensorFlow silently falls back to the CPU: placed_on is what shows it.
        assert on_missing_gpu["device"] == "/device:GPU:7" and on_missing_gpu["placed_on"].endswith("CPU:0")


class _FakeDevice:
    def __init__(self, name: str):
        self.name = name


class _FakeTf:
    """The few `tf.config` calls `_select_device` makes, recorded."""

    def __init__(self, gpus: int):
        self.gpus = [_FakeDevice(f"/physical_device:GPU:{i}") for i in range(gpus)]
        self.calls: List[Any] = []
        self.config = self
        self.experimental = self

    def list_physical_devices(self, kind: str):
        return self.gpus if kind == "GPU" else []

    def set_visible_devices(self, devices, kind):
        self.calls.append(("visible", devices, kind))

    def set_memory_growth(self, device, value):
        self.calls.append(("growth", device.name, value))

    def get_memory_info(self, device):
        return {"current": 0, "peak": 512 * 2**20}


def test_device_auto_takes_the_gpu_with_memory_growth_and_cpu_hides_it():
    tf = _FakeTf(gpus=1)
    assert _select_device(tf, "auto") == {"used": "gpu", "gpus_visible": ["/physical_device:GPU:0"]}
    assert tf.calls == [("growth", "/physical_device:GPU:0", True)]
    tf = _FakeTf(gpus=1)
    assert _select_device(tf, "cpu")["used"] == "cpu" and tf.calls == [("visible", [], "GPU")]
    assert _select_device(_FakeTf(gpus=0), "auto") == {"used": "cpu", "gpus_visible": []}
    with pytest.raises(RuntimeError, match="no GPU visible to TensorFlow"):
        _select_device(_FakeTf(gpus=0), "gpu")


def _fake_nvml(processes, fail: bool = False):
    def running(handle):
        if fail:
            raise RuntimeError("NVML_ERROR_GPU_IS_LOST")
        return [types.SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in processes]

    return types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=3 * 2**30),
        nvmlDeviceGetComputeRunningProcesses=running,
    )


@pytest.mark.parametrize(
    "processes, fail, expected",
    [
        ("self", False, {"nvml_process_peak_mb": 2048.0, "nvml_device_used_peak_mb": 3072.0, "nvml_error": None}),
        ([(1, 2**30)], False, {"nvml_process_peak_mb": None, "nvml_device_used_peak_mb": 3072.0, "nvml_error": None}),
        (
            [],
            True,
            {
                "nvml_process_peak_mb": None,
                "nvml_device_used_peak_mb": None,
                "nvml_error": "RuntimeError: NVML_ERROR_GPU_IS_LOST",
            },
        ),
    ],
)
def test_gpu_memory_peak_from_nvml_and_tensorflow(monkeypatch, processes, fail, expected):
    """Own PID seen (process figure), PID hidden by a container (device figure only), NVML failing."""

    processes = [(os.getpid(), 2 * 2**30)] if processes == "self" else processes
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(processes, fail))
    memory = _GpuMemory(_FakeTf(gpus=1))
    memory.sample()
    assert memory.report() == {**expected, "tf_peak_mb": 512.0}
