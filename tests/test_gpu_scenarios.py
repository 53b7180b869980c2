"""GPU, driver and CUDA library checks against simulated machines (tests/gpu_sim).

Each scenario is a directory tree with gcc-built stand-ins for the NVIDIA libraries; the
real doctor runs unmodified in a child process with the scenario's LD_LIBRARY_PATH, so
NVML, libcuda and every CUDA library are loaded by the same code as on a workstation.
"""

from __future__ import annotations

import json
import os
import sys

import pytest
from gpu_sim.build import (
    SCENARIOS_FILE,
    Compiler,
    build_scenario,
    default_cache_dir,
    load_scenarios,
)

AREAS = ("--only", "gpu", "--only", "cuda", "--only", "activation.ptxas")

#: Every gpu.* / cuda.* / activation.ptxas verdict that is not a pass or a skip, per scenario.
EXPECTED = {
    "healthy-t4": {},
    "a100": {},
    "h100": {"gpu.compute-capability": "warn", "activation.ptxas": "fail"},
    "rtx4090": {"activation.ptxas": "fail"},
    "driver-418": {"gpu.driver": "fail", "activation.ptxas": "fail"},
    "driver-455": {"gpu.driver": "warn", "activation.ptxas": "warn"},
    "no-driver": {"gpu.nvml": "fail", "gpu.kernel-module": "fail"},
    "driver-not-loaded": {"gpu.nvml": "fail", "gpu.kernel-module": "fail"},
    "driver-library-mismatch": {"gpu.nvml": "fail"},
    "nouveau": {"gpu.nvml": "fail", "gpu.kernel-module": "fail"},
    "nvml-no-device": {"gpu.nvml": "fail"},
    "cuda-visible-devices-empty": {"gpu.visible-devices": "fail"},
    "cuda-visible-devices-minus-one": {"gpu.visible-devices": "fail"},
    "cuda-visible-devices-missing": {"gpu.visible-devices": "fail"},
    "cudnn-8.0.5": {"cuda.libcudnn": "fail"},
    "cudnn-stray-conda": {"cuda.libcudnn": "warn"},
    "cudnn-8.9": {},
    "tensorrt8-without-so7": {"cuda.tensorrt": "fail"},
    "tensorrt-symlinked": {"cuda.tensorrt": "warn"},
    "cublas-twice": {"cuda.libcublas": "warn", "cuda.libcublasLt": "warn"},
    # Activation puts the env's directories first (activated.py), so the env's copies load and the
    # CUDA 10.2 ones are only other copies on the path: a warning each, not a cuDNN 8.0 failure.
    "shadow-cuda-10.2": {"cuda.libcufft": "warn", "cuda.libcurand": "warn", "cuda.libcudnn": "warn"},
    "cuda12-libs-only": {
        "cuda.libcudart": "fail",
        "cuda.libcublas": "fail",
        "cuda.libcublasLt": "fail",
        "cuda.libcufft": "fail",
        "cuda.libcusparse": "fail",
    },
    "wsl2": {},
    "mig-on": {"gpu.cuda-driver": "fail", "gpu.mig": "warn"},
    "busy-gpu": {"gpu.memory": "warn"},
    "init-hangs": {"gpu.nvml": "fail"},
    "segv-on-load": {"cuda.libcudnn": "fail"},
    "v100-ptxas-cuda13": {"activation.ptxas": "fail"},
    "cudnn-no-version-call": {},
    "cudnn-unversioned": {"cuda.libcudnn": "warn"},
    "no-driver-pip-cudart": {"gpu.nvml": "fail", "gpu.kernel-module": "fail"},
    "driver-470-cudart-11.8": {"gpu.driver": "warn"},
}

#: (check id, words its summary must hold, words its fix must hold) per scenario.
DETAILS = {
    "h100": [
        ("gpu.compute-capability", "JIT-compiled from compute_80 PTX", "CUDA_CACHE_MAXSIZE"),
        ("activation.ptxas", "cannot compile for GPU 0 NVIDIA H100 80GB HBM3 (sm_90)", "cuda-nvcc=11.8"),
    ],
    "rtx4090": [
        (
            "activation.ptxas",
            "(CUDA 11.2) cannot compile for GPU 0 NVIDIA GeForce RTX 4090 (sm_89)",
            "conda install -c nvidia cuda-nvcc=11.8",
        )
    ],
    "driver-418": [
        ("gpu.driver", "418.87.01 is too old for CUDA 11.2", ">= 460.27.03"),
        ("activation.ptxas", "a newer major than the driver's CUDA 10.1", None),
    ],
    "driver-455": [("gpu.driver", "minor-version compatibility", ">= 460.27.03")],
    "no-driver": [("gpu.nvml", "no NVIDIA driver", "Install the NVIDIA driver (>= 460.27.03")],
    "driver-not-loaded": [("gpu.nvml", "kernel module is not loaded", "sudo modprobe nvidia")],
    "driver-library-mismatch": [("gpu.nvml", "version mismatch", "sudo reboot")],
    "nouveau": [("gpu.kernel-module", "nouveau", "blacklist nouveau")],
    "nvml-no-device": [("gpu.nvml", "sees no GPU", "nvidia-smi")],
    "cuda-visible-devices-empty": [("gpu.visible-devices", "hides every GPU", "unset CUDA_VISIBLE_DEVICES")],
    "cuda-visible-devices-missing": [
        ("gpu.visible-devices", "names '1', which is not a GPU here", "CUDA_VISIBLE_DEVICES")
    ],
    "cudnn-8.0.5": [
        (
            "cuda.libcudnn",
            "is 8.0.5, outside the recipe's >=8.1,<9",
            "conda remove cudnn && python -m pip install nvidia-cudnn-cu11==8.6.0.163",
        )
    ],
    "cudnn-stray-conda": [
        ("cuda.libcudnn", "2 copies on the loader path with different versions", "conda remove cudnn  #"),
        ("cuda.libcudnn", "env/lib/libcudnn.so.8 (8.1.0, conda:cudnn 8.1.0.77)", None),
    ],
    "tensorrt8-without-so7": [("cuda.tensorrt", "libnvinfer.so.7 is missing while", "merlin-doctor fix --only links")],
    "tensorrt-symlinked": [("cuda.tensorrt", "TensorRT 8.5.3", None)],
    "cublas-twice": [("cuda.libcublas", "nvidia/cublas/lib/libcublas.so.11 (11.10.3", None)],
    "shadow-cuda-10.2": [
        ("cuda.libcufft", "2 copies on the loader path", None),
        ("cuda.libcudnn", "nvidia/cudnn/lib/libcudnn.so.8 (8.6.0.163, pip:nvidia-cudnn-cu11 8.6.0.163); ", None),
        ("cuda.libcudnn", "usr/local/cuda-10.2/lib64/libcudnn.so.8 (8.0.5, no package)", None),
    ],
    "cuda12-libs-only": [("cuda.libcudart", "libcudart.so.12", "cudatoolkit=11.2.2")],
    "mig-on": [("gpu.mig", "MIG is enabled", "nvidia-smi mig")],
    "busy-gpu": [("gpu.memory", "in use by 4242 (no such process here", "nvidia-smi --query-compute-apps")],
    "init-hangs": [("gpu.nvml", "timed out after 4.5 s", "reboot")],
    "segv-on-load": [("cuda.libcudnn", "killed the process with SIGSEGV", "nvidia-cudnn-cu11==8.6.0.163")],
    "v100-ptxas-cuda13": [
        (
            "activation.ptxas",
            "ptxas 13.0.88 (CUDA 13.0) cannot compile for GPU 0 Tesla V100-SXM2-16GB (sm_70)",
            "conda install -c nvidia cuda-nvcc=11.3.58",
        )
    ],
    "cudnn-no-version-call": [
        ("cuda.libcudnn", "libcudnn.so.8 8.6.0.163 from", None),
        ("cuda.libcudnn", "read from the pip package nvidia-cudnn-cu11", None),
    ],
    "cudnn-unversioned": [("cuda.libcudnn", "its version cannot be read", "nvidia-cudnn-cu11==8.6.0.163")],
    "no-driver-pip-cudart": [
        ("cuda.libcudart", "libcudart.so.11.0 11.8.89 from", None),
        ("cuda.libcudart", "read from the pip package nvidia-cuda-runtime-cu11", None),
    ],
    "driver-470-cudart-11.8": [
        ("gpu.driver", "driver 470.82.01 runs CUDA 11.8 (the runtime that loads: libcudart.so.11.0 at", ">= 520.61.05"),
        ("gpu.driver", "CUDA_ERROR_UNSUPPORTED_PTX_VERSION", None),
    ],
}


def test_every_scenario_has_expectations():
    assert set(EXPECTED) == {n for n in load_scenarios(SCENARIOS_FILE) if not n.startswith("_")}


@pytest.fixture(scope="session")
def compiler():
    return Compiler(default_cache_dir())


def judge(name: str, tmp_path, compiler, *extra: str) -> dict:
    scenario = build_scenario(name, tmp_path / "machine root", compiler=compiler)
    result = scenario.run(
        [sys.executable, "-m", "merlin_doctor", "check", "--fast", "--json", "--timeout", "5", *AREAS, *extra],
        timeout=120,
    )
    assert result.returncode in (0, 1), result.stderr
    return {v["id"]: v for v in json.loads(result.stdout)["verdicts"]}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scenario_verdicts(name, tmp_path, compiler):
    verdicts = judge(name, tmp_path, compiler)
    problems = {i: v["status"] for i, v in verdicts.items() if v["status"] not in ("pass", "skip")}
    assert problems == EXPECTED[name], {i: verdicts[i]["summary"] for i in problems}
    for check_id, words, fix in DETAILS.get(name, []):
        assert words in verdicts[check_id]["summary"], verdicts[check_id]["summary"]
        if fix:
            assert fix in (verdicts[check_id]["fix"] or ""), verdicts[check_id]["fix"]


def test_healthy_t4_reports_where_each_library_comes_from(tmp_path, compiler):
    verdicts = judge("healthy-t4", tmp_path, compiler)
    cudnn = verdicts["cuda.libcudnn"]
    assert cudnn["evidence"]["version"] == "8.6.0"
    assert cudnn["evidence"]["owner"] == {"kind": "pip", "name": "nvidia-cudnn-cu11", "version": "8.6.0.163"}
    assert cudnn["evidence"]["path"].endswith("site-packages/nvidia/cudnn/lib/libcudnn.so.8")
    assert cudnn["evidence"]["realpath"] == cudnn["evidence"]["path"], "the wheel ships one plain file"
    cudart = verdicts["cuda.libcudart"]["evidence"]
    assert cudart["version"] == "11.2" and cudart["owner"]["name"] == "cudatoolkit"
    assert cudart["realpath"] != cudart["path"], "conda's soname is a symlink to the real file"
    assert verdicts["gpu.driver"]["evidence"]["driver_version"] == "525.85.12"


def test_removing_the_stray_conda_cudnn_is_what_turns_the_warning_green(tmp_path, compiler):
    """An env from the article's route given the recipe's cuDNN wheel: the fix is `conda remove cudnn`.
    Doing what it does (deleting the files its conda-meta record lists, then the record) leaves the
    wheel's cuDNN alone on the path, and the verdict passes."""
    scenario = build_scenario("cudnn-stray-conda", tmp_path / "m", compiler=compiler)
    doctor = [sys.executable, "-m", "merlin_doctor", "check", "--fast", "--json", "--only", "cuda.libcudnn"]

    def verdict() -> dict:
        return json.loads(scenario.run(doctor, timeout=120).stdout)["verdicts"][0]

    before = verdict()
    assert (before["status"], before["fix"].split("  #")[0]) == ("warn", "conda remove cudnn")
    (record,) = (scenario.prefix / "conda-meta").glob("cudnn-*.json")
    for name in json.loads(record.read_text())["files"]:
        (scenario.prefix / name).unlink()
    record.unlink()
    after = verdict()
    assert after["status"] == "pass" and "pip:nvidia-cudnn-cu11 8.6.0.163" in after["summary"], after


def test_no_driver_with_cpu_ok_skips_every_gpu_check(tmp_path, compiler):
    verdicts = judge("no-driver", tmp_path, compiler, "--cpu-ok")
    assert {v["status"] for v in verdicts.values()} == {"skip"}


def test_the_stand_in_ptxas_rejects_the_arch_the_verdict_names(tmp_path, compiler):
    """The doctor's table and ptxas itself agree: CUDA 13's ptxas refuses sm_70, accepts sm_75."""
    scenario = build_scenario("v100-ptxas-cuda13", tmp_path / "m", compiler=compiler)
    ptxas = str(scenario.prefix / "bin" / "ptxas")
    refused = scenario.run([ptxas, "--gpu-name", "sm_70", "--version"])
    assert refused.returncode != 0 and "Value 'sm_70' is not defined for option 'gpu-name'" in refused.stderr
    assert scenario.run([ptxas, "--gpu-name", "sm_75", "--version"]).returncode == 0
    verdict = judge("v100-ptxas-cuda13", tmp_path / "again", compiler)["activation.ptxas"]
    assert "--gpu-name sm_70" in verdict["summary"]


def test_a_busy_gpu_names_who_holds_it(tmp_path, compiler):
    """The process holding the GPU is this test: gpu.memory names it, its user and its command line."""
    import psutil

    scenario = build_scenario("busy-gpu", tmp_path / "m", compiler=compiler)
    conf = scenario.root / "gpu_sim.conf"
    conf.write_text(
        conf.read_text().replace("device.0.processes=4242:14500,4243:300", f"device.0.processes={os.getpid()}:14500")
    )
    result = scenario.run(
        [sys.executable, "-m", "merlin_doctor", "check", "--fast", "--json", "--only", "gpu.memory"], timeout=120
    )
    verdict = next(v for v in json.loads(result.stdout)["verdicts"] if v["id"] == "gpu.memory")
    me = psutil.Process(os.getpid())
    assert f"in use by {os.getpid()} {me.name()} ({me.username()})" in verdict["summary"], verdict["summary"]
    assert "pytest" in verdict["summary"]  # the command line
    held = verdict["evidence"]["busy"][0]["processes"][0]
    assert held["cmdline"].startswith(" ".join(me.cmdline())[:40])


def test_the_tensorrt_dir_is_searched_as_the_activated_env_will(tmp_path, compiler):
    """The env is not activated (its scripts were never sourced), yet the .so.7 links in
    site-packages/tensorrt are found: the probe uses the recipe's LD_LIBRARY_PATH."""
    verdicts = judge("tensorrt-symlinked", tmp_path, compiler)
    trt = verdicts["cuda.tensorrt"]["evidence"]["libnvinfer.so.7"]
    assert "site-packages/tensorrt/libnvinfer.so.7" in trt["path"] and trt["realpath"].endswith("libnvinfer.so.8")
