"""TensorFlow and end-to-end checks: judged on real TensorFlow output captured here, and live.

The fixture `tf-probes-cpu-py39.json` is what the tensorflow and e2e probes really
reported on this project's GPU-less machine (TF 2.10.0 CPU stack, Python 3.9).
"""

from __future__ import annotations

import copy
import json

import pytest
from conftest import doctor, load_fixture

from merlin_doctor import testing
from merlin_doctor.verdict import Status


@pytest.fixture
def tf_cpu():
    return load_fixture("tf-probes-cpu-py39.json")


def judge(probes: dict, recipe: str = "tf210-cuda112", **options) -> dict:
    return testing.judge(probes, recipe, only=["tf", "e2e", "gpu.nvml"], **options)


def test_gpu_seen_by_the_driver_but_not_by_tensorflow_is_explained_from_its_log(tf_cpu):
    """NVML sees a T4, but TensorFlow could not load libcuda/libcudart: the log says why."""
    probes = load_fixture("gpu-t4-healthy.json")["probes"]
    probes.update(tensorflow=tf_cpu["tensorflow"], e2e=tf_cpu["e2e"])
    v = judge(probes)["tf.gpus"]
    assert v.status is Status.FAIL
    assert v.summary.startswith("TensorFlow registers 0 of 1 GPU(s): ")
    ids = [e["id"] for e in v.evidence["explained"]]
    assert ids[:2] == ["libcuda-missing", "cuda-libs-missing"], ids
    assert any("libcuda.so.1" in line for line in v.evidence["explained"][0]["lines"])


def test_cpu_only_state_passes_with_the_cpu_recipe(tf_cpu):
    probes = {"nvml": {"loaded": False, "error": "NVML Shared Library Not Found"}, **tf_cpu}
    probes.pop("note")
    v = judge(probes, recipe="cpu")
    assert {i: x.status for i, x in v.items() if x.status is not Status.SKIP} == {
        "tf.import": Status.PASS,
        "tf.matmul": Status.PASS,
        "tf.xla": Status.PASS,
        "tf.merlin-imports": Status.PASS,
        "e2e.ple": Status.PASS,
    }
    assert "TensorFlow 2.10.0" in v["tf.import"].summary
    assert v["e2e.ple"].evidence["examples_per_s"] > 0 and len(v["e2e.ple"].evidence["curve"]) >= 2


def test_a_failed_import_is_explained(tf_cpu):
    tf = copy.deepcopy(tf_cpu["tensorflow"])
    tf["import"] = {"ok": False, "error": "TypeError: Descriptors cannot not be created directly."}
    tf["log"] = [
        "TypeError: Descriptors cannot not be created directly.",
        "If this call came from a _pb2.py file, your generated code is out of date and must be regenerated "
        "with protoc >= 3.19.0.",
    ]
    v = judge({"tensorflow": tf, "e2e": tf_cpu["e2e"], "nvml": {}}, recipe="cpu")["tf.import"]
    assert v.status is Status.FAIL and "protobuf-too-new" in v.summary
    assert "protobuf" in v.fix


def test_wrong_tensorflow_version(tf_cpu):
    tf = copy.deepcopy(tf_cpu["tensorflow"])
    tf["import"]["version"] = "2.11.0"
    v = judge({"tensorflow": tf, "e2e": tf_cpu["e2e"], "nvml": {}}, recipe="cpu")["tf.import"]
    assert v.status is Status.FAIL and v.fix == "python -m pip install 'tensorflow==2.10.*'"


def test_gpu_parity_failure_names_the_device(tf_cpu):
    tf = copy.deepcopy(tf_cpu["tensorflow"])
    tf["tests"]["matmul"]["gpus"] = [{"device": "/device:GPU:0", "ok": True, "rel_err": 0.9}]
    v = judge({"tensorflow": tf, "e2e": tf_cpu["e2e"], "nvml": {}}, recipe="cpu")["tf.matmul"]
    assert v.status is Status.FAIL and "/device:GPU:0 is wrong: relative error 9.00e-01" in v.summary


def test_cudf_missing_on_a_gpu_machine_warns(tf_cpu):
    probes = load_fixture("gpu-t4-healthy.json")["probes"]
    probes.update(tensorflow=tf_cpu["tensorflow"], e2e=tf_cpu["e2e"])
    v = judge(probes)["tf.merlin-imports"]
    assert v.status is Status.WARN and "experimental CPU mode" in v.summary and "pypi.nvidia.com" in v.fix


def test_ple_that_did_not_learn_fails_with_its_curve(tf_cpu):
    e2e = copy.deepcopy(tf_cpu["e2e"])
    e2e["metrics"]["click"]["auc"] = 0.51
    v = judge({"tensorflow": tf_cpu["tensorflow"], "e2e": e2e, "nvml": {}}, recipe="cpu")["e2e.ple"]
    assert v.status is Status.FAIL and "click" in v.summary and v.evidence["curve"]


@pytest.mark.slow
def test_check_cpu_ok_runs_tensorflow_and_trains_ple_for_real(tf_python, tmp_path):
    """The issue's 'done when': the TensorFlow checks and the PLE check run and pass in the CPU env."""
    result = doctor("check", "--recipe", "cpu", "--cpu-ok", "--json", python=tf_python, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    data = json.loads(result.stdout)
    statuses = {v["id"]: v["status"] for v in data["verdicts"]}
    assert statuses["tf.import"] == statuses["e2e.ple"] == statuses["tf.xla"] == "pass"
    ple = next(v for v in data["verdicts"] if v["id"] == "e2e.ple")
    assert ple["evidence"]["device"]["used"] == "cpu" and ple["evidence"]["metrics"]["click"]["auc"] >= 0.75
    log = data["facts"]["probes"]["tensorflow"]["log"]
    assert any("Could not load dynamic library 'libcudart.so.11.0'" in line for line in log)


def test_fast_skips_tensorflow_and_training(tf_python):
    result = doctor("check", "--recipe", "cpu", "--cpu-ok", "--fast", "--json", python=tf_python)
    data = json.loads(result.stdout)
    skipped = {v["id"]: v["summary"] for v in data["verdicts"] if v["id"].startswith(("tf.", "e2e."))}
    assert skipped and all("--fast" in s or "--cpu-ok" in s for s in skipped.values())
    assert all(v["status"] == "skip" for v in data["verdicts"] if v["id"].startswith(("tf.", "e2e.")))
    assert "tensorflow" not in data["facts"]["probes"]


def test_a_gpu_request_that_ran_on_the_cpu_is_not_a_pass(tf_cpu):
    tf = copy.deepcopy(tf_cpu["tensorflow"])
    tf["tests"]["xla"]["gpus"] = [
        {
            "device": "/device:GPU:0",
            "ok": True,
            "rel_err": 0.0,
            "placed_on": "/job:localhost/replica:0/task:0/device:CPU:0",
        }
    ]
    v = judge({"tensorflow": tf, "e2e": tf_cpu["e2e"], "nvml": {}}, recipe="cpu")["tf.xla"]
    assert (
        v.status is Status.FAIL and "ran on /job:localhost/replica:0/task:0/device:CPU:0, not on the GPU" in v.summary
    )


def test_a_nan_gpu_result_fails_instead_of_crashing_the_check(tf_cpu):
    tf = copy.deepcopy(tf_cpu["tensorflow"])
    tf["tests"]["matmul"]["gpus"] = [
        {
            "device": "/device:GPU:0",
            "ok": True,
            "rel_err": None,
            "placed_on": "/job:localhost/replica:0/task:0/device:GPU:0",
        }
    ]
    v = judge({"tensorflow": tf, "e2e": tf_cpu["e2e"], "nvml": {}}, recipe="cpu")["tf.matmul"]
    assert v.status is Status.FAIL and "NaN or infinite" in v.summary


def test_a_snapshot_without_tensorflow_facts_skips_the_tensorflow_checks(tf_cpu):
    v = judge({"nvml": {"loaded": False, "error": "NVML Shared Library Not Found"}}, recipe="cpu")
    assert v["tf.import"].status is Status.SKIP and "holds no 'tensorflow' facts" in v["tf.import"].summary
