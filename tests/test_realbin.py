"""The real-binaries tier: NVIDIA's own CUDA 11 wheels and TensorRT as ground truth.

`scripts/dev-env` builds the env with the product itself (`setup --recipe tf210-pip`, then
merlin-doctor installed into it) at .venv/tf210-pip ($MERLIN_DOCTOR_REALBIN_ENV). These tests:
- compare each `cuda.*` verdict's path, version and owner with what this file reads itself
  (its own ctypes calls, pip's metadata) and with TensorFlow's own answers;
- close the loop: break the env as users do, run the fix exactly as the doctor printed it
  in that env (and `merlin-doctor fix`), and require that verdict to pass afterwards.
Every test leaves the env converged (`setup` again, a sub-second no-op when nothing broke).
They run once, in the Python 3.9 pass of scripts/test (marker `realbin`).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest
from conftest import REPO

pytestmark = [pytest.mark.realbin, pytest.mark.slow]

RECIPE = "tf210-pip"
ENV = Path(os.environ.get("MERLIN_DOCTOR_REALBIN_ENV") or REPO / ".venv" / RECIPE)
SITE = ENV / "lib" / "python3.9" / "site-packages"
#: soname -> (the wheel's directory under nvidia/, the distribution, the version call)
LIBRARIES = {
    "libcudart.so.11.0": ("cuda_runtime", "nvidia-cuda-runtime-cu11", "cudaRuntimeGetVersion"),
    "libcublas.so.11": ("cublas", "nvidia-cublas-cu11", "cublasGetProperty"),
    "libcublasLt.so.11": ("cublas", "nvidia-cublas-cu11", "cublasLtGetProperty"),
    "libcufft.so.10": ("cufft", "nvidia-cufft-cu11", "cufftGetProperty"),
    "libcurand.so.10": ("curand", "nvidia-curand-cu11", "curandGetProperty"),
    "libcusolver.so.11": ("cusolver", "nvidia-cusolver-cu11", "cusolverGetProperty"),
    "libcusparse.so.11": ("cusparse", "nvidia-cusparse-cu11", "cusparseGetProperty"),
    "libcudnn.so.8": ("cudnn", "nvidia-cudnn-cu11", "cudnnGetProperty"),
}
#: The wheels a break installs; pip's cache keeps them between runs.
CUDNN9 = "nvidia-cudnn-cu11==9.0.0.312"
CUDA12_RUNTIME = "nvidia-cuda-runtime-cu12==12.1.105"

#: What the test reads itself, in the env's own Python: a library's file, version and owner.
GROUND_TRUTH = r"""
import ctypes, json, os, sys
from importlib import metadata
site, libraries = sys.argv[1], json.loads(sys.argv[2])
out = {}
for soname, (folder, dist, call) in libraries.items():
    path = os.path.join(site, "nvidia", folder, "lib", soname)
    lib = ctypes.CDLL(path)
    value, version = ctypes.c_int(), None
    if call == "cudaRuntimeGetVersion":  # needs a driver: without one it returns an error, not a version
        if lib.cudaRuntimeGetVersion(ctypes.byref(value)) == 0:
            version = "%d.%d" % (value.value // 1000, value.value % 1000 // 10)
    else:
        parts = []
        for kind in (0, 1, 2):
            assert getattr(lib, call)(kind, ctypes.byref(value)) == 0
            parts.append(str(value.value))
        version = ".".join(parts)
    owner = metadata.distribution(dist)
    rel = os.path.relpath(path, site)
    assert any(str(f) == rel for f in owner.files), (dist, rel)
    # no version call answers (cudart's needs a driver): the wheel's own version is the library's
    out[soname] = {"path": path, "version": version or owner.version, "owner": dist, "owner_version": owner.version}
trt = os.path.join(site, "tensorrt", "libnvinfer.so.8")
v = ctypes.CDLL(trt).getInferLibVersion()
out["tensorrt"] = {"path": trt, "version": "%d.%d.%d" % (v // 1000, v % 1000 // 100, v % 100),
                   "owner_version": metadata.version("tensorrt")}
print(json.dumps(out))
"""

TENSORFLOW_ANSWERS = r"""
import json
import tensorflow as tf
from tensorflow.compiler.tf2tensorrt import _pywrap_py_utils as trt
info = tf.sysconfig.get_build_info()
print(json.dumps({"loaded": list(trt.get_loaded_tensorrt_version()), "linked": list(trt.get_linked_tensorrt_version()),
                  "enabled": trt.is_tensorrt_enabled(), "cuda": info["cuda_version"], "cudnn": info["cudnn_version"]}))
"""


def _require_env() -> None:
    if not (ENV / "bin" / "merlin-doctor").exists():
        pytest.fail(
            f"{ENV} has no merlin-doctor: run scripts/dev-env (it builds the {RECIPE} env), "
            "or set MERLIN_DOCTOR_REALBIN_ENV"
        )


def shell(
    script: str, activate: bool = True, env: Optional[Dict[str, str]] = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    """Run bash lines as a user would: a prompt set, the env's bin/activate sourced first."""
    base = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH")}
    base.update(env or {}, NO_COLOR="1")
    head = "export PS1='$ '\n" + (f"source {shlex.quote(str(ENV / 'bin' / 'activate'))}\n" if activate else "")
    return subprocess.run(
        ["bash", "-c", head + script], capture_output=True, text=True, env=base, timeout=timeout, cwd=str(REPO)
    )


def verdicts(
    *only: str, activate: bool = True, env: Optional[Dict[str, str]] = None, fast: bool = True
) -> Dict[str, dict]:
    """The doctor's verdicts in the env (activated unless said otherwise), by id."""
    args = " ".join(f"--only {shlex.quote(o)}" for o in only)
    doctor = "merlin-doctor" if activate else shlex.quote(str(ENV / "bin" / "merlin-doctor"))
    done = shell(f"{doctor} check --recipe {RECIPE} {args} {'--fast' if fast else ''} --json", activate, env)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    return {v["id"]: v for v in json.loads(done.stdout)["verdicts"]}


def converge() -> subprocess.CompletedProcess:
    """`./setup_env` run by this Python, which has merlin-doctor's dependencies (no bootstrap)."""
    command = [sys.executable, str(REPO / "setup_env"), "--recipe", RECIPE, "--prefix", str(ENV), "--yes", "-q"]
    return subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=str(REPO))


@pytest.fixture(autouse=True)
def converged() -> Iterator[None]:
    """Each test starts and ends with the env as setup builds it."""
    _require_env()
    yield
    done = converge()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def pip(*args: str) -> None:
    done = subprocess.run(
        [str(ENV / "bin" / "python"), "-m", "pip", *args, "--disable-pip-version-check", "-q"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


# --- the env setup builds ---------------------------------------------------------------------


def test_setup_again_is_a_fast_no_op() -> None:
    started = time.perf_counter()
    done = converge()
    took = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    assert "Nothing to do" in done.stdout + done.stderr
    assert took < 10, took


def test_activate_wires_every_wheel_and_deactivate_restores_the_environment_exactly() -> None:
    script = (
        "export PS1='$ ' LD_LIBRARY_PATH=/opt/elsewhere/lib XLA_FLAGS=--xla_dump_to=/tmp/x\n"
        'env | sort > "$0.before"\n'
        f"source {shlex.quote(str(ENV / 'bin' / 'activate'))}\n"
        'echo "LD=$LD_LIBRARY_PATH"; echo "XLA=$XLA_FLAGS"\n'
        "deactivate\n"
        'env | sort > "$0.after"\n'
        'diff "$0.before" "$0.after" && echo RESTORED\n'
    )
    done = subprocess.run(["bash", "-c", script, str(REPO / ".venv" / "realbin-env")], capture_output=True, text=True)
    lines = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    ld = lines["LD"].split(":")
    for folder in {f for f, _, _ in LIBRARIES.values()}:
        assert str(SITE / "nvidia" / folder / "lib") in ld
    assert ld[-1] == "/opt/elsewhere/lib" and str(SITE / "tensorrt") in ld
    assert lines["XLA"] == f'--xla_gpu_cuda_data_dir="{SITE / "nvidia" / "cuda_nvcc"}"'
    assert done.stdout.strip().endswith("RESTORED"), done.stdout + done.stderr


def test_verdicts_agree_with_ground_truth_and_with_tensorflow() -> None:
    truth = json.loads(
        shell(
            f"python -c {shlex.quote(GROUND_TRUTH)} {shlex.quote(str(SITE))} {shlex.quote(json.dumps(LIBRARIES))}"
        ).stdout
    )
    found = verdicts("cuda")
    for soname, (_, dist, _) in LIBRARIES.items():
        verdict = found["cuda." + soname.split(".so")[0]]
        assert verdict["status"] == "pass", verdict
        evidence, want = verdict["evidence"], truth[soname]
        assert evidence["realpath"] == want["path"], (soname, evidence)
        assert evidence["version"] == want["version"], (soname, evidence["version"], want["version"])
        assert evidence["owner"] == {"kind": "pip", "name": dist, "version": want["owner_version"]}, evidence
    trt = found["cuda.tensorrt"]
    assert trt["status"] == "pass", trt
    assert trt["evidence"]["libnvinfer.so.7"]["realpath"] == truth["tensorrt"]["path"]
    assert trt["evidence"]["libnvinfer.so.7"]["version"] == truth["tensorrt"]["version"] == "8.5.3"
    assert trt["evidence"]["libnvinfer.so.7"]["owner"]["version"] == truth["tensorrt"]["owner_version"]
    tf = json.loads(shell(f"python -c {shlex.quote(TENSORFLOW_ANSWERS)} 2>/dev/null").stdout)
    assert tf["loaded"] == [int(x) for x in truth["tensorrt"]["version"].split(".")] == [8, 5, 3]
    assert tf["enabled"] and tf["linked"][0] == 7 and tf["cuda"] == "11.2" and tf["cudnn"] == "8"
    tf_trt = verdicts("tf.tensorrt", fast=False)["tf.tensorrt"]  # judged where a GPU answers NVML
    assert (tf_trt["status"], tf_trt["evidence"].get("loaded")) == ("pass", "8.5.3") or (
        tf_trt["status"] == "skip" and "gpu.nvml" in tf_trt["summary"]
    ), tf_trt


def test_nvidia_namespace_is_no_duplicate_and_the_env_is_whole() -> None:
    found = verdicts("packages", "activation", "env")
    bad = {k: (v["status"], v["summary"]) for k, v in found.items() if v["status"] not in ("pass", "skip")}
    assert bad == {}, bad
    assert "nvidia" not in found["packages.duplicates"]["evidence"]["modules"]


# --- the closed loop: break as users do, run the printed fix, the verdict turns green -----------

LOOP: List[dict] = []  # what each break printed and whether its fix worked, for the report


#: `merlin-doctor fix` asks before it changes anything; the user answers y at its prompt (in a terminal).
ANSWER_YES = """merlin-doctor() {{
  if [ "$1" = fix ]; then printf 'y\\n' | script -qec "$(printf '%q ' {doctor} "$@")" /dev/null; else {doctor} "$@"; fi
}}"""


def _fix_and_recheck(check_id: str, before: dict, env: Optional[Dict[str, str]] = None, activate: bool = True) -> dict:
    """Run the verdict's fix exactly as printed, then judge again in that same shell (a printed
    `source .../bin/activate` must hold for what follows it, as it does for a user)."""
    fix = before["fix"]
    assert fix, before
    assert "conda " not in fix and "pip install merlin-doctor" not in fix, fix
    doctor = shlex.quote(str(ENV / "bin" / "merlin-doctor"))
    done = shell(
        f"{ANSWER_YES.format(doctor=doctor)}\n"
        f'{{ {fix}\n}} >"$FIX_LOG" 2>&1 || {{ cat "$FIX_LOG" >&2; exit 97; }}\n'
        f"{doctor} check --recipe {RECIPE} --only {check_id} --fast --json",
        activate,
        dict(env or {}, FIX_LOG=str(REPO / ".venv" / "realbin-fix.log")),
    )
    assert done.returncode in (0, 1), f"{fix}\n{done.stderr[-3000:]}"
    after = {v["id"]: v for v in json.loads(done.stdout)["verdicts"]}[check_id]
    LOOP.append({"check": check_id, "before": before["status"], "fix": fix, "after": after["status"]})
    return after


def _run_doctor_fix(check_id: str) -> dict:
    """`merlin-doctor fix` in the broken env: it runs the steps the failing verdicts name."""
    before = verdicts(check_id)[check_id]
    command = f"merlin-doctor fix --recipe {RECIPE} --yes -q"
    done = shell(command)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    after = verdicts(check_id)[check_id]
    LOOP.append({"check": check_id, "before": before["status"], "fix": command, "after": after["status"]})
    return after


def test_cudnn_9_is_named_with_its_owner_and_the_pinned_wheel_brings_8_back() -> None:
    pip("install", CUDNN9)
    before = verdicts("cuda.libcudnn")["cuda.libcudnn"]
    assert before["status"] == "fail", before
    assert "libcudnn.so.9" in before["summary"] and "pip:nvidia-cudnn-cu11 9.0.0.312" in before["summary"], before
    assert before["fix"] == "python -m pip install nvidia-cudnn-cu11==8.6.0.163" and before["step"] == "pip"
    assert _fix_and_recheck("cuda.libcudnn", before)["status"] == "pass"
    pip("install", CUDNN9)
    assert _run_doctor_fix("cuda.libcudnn")["status"] == "pass"


@pytest.fixture(scope="module")
def cuda12_lib(tmp_path_factory) -> Path:
    """libcudart.so.12 from NVIDIA's CUDA 12 runtime wheel, in a directory of its own."""
    where = tmp_path_factory.mktemp("cuda12")
    subprocess.run(
        [str(ENV / "bin" / "python"), "-m", "pip", "download", "--no-deps", "-q", "-d", str(where), CUDA12_RUNTIME],
        check=True,
        capture_output=True,
        timeout=600,
    )
    wheel = next(where.glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        member = next(n for n in archive.namelist() if n.endswith("/libcudart.so.12"))
        (where / "lib").mkdir()
        (where / "lib" / "libcudart.so.12").write_bytes(archive.read(member))
    return where / "lib"


def test_cuda_12_first_on_the_path_without_activation_finds_the_venvs_own_runtime(cuda12_lib: Path) -> None:
    env = {"LD_LIBRARY_PATH": str(cuda12_lib)}
    before = verdicts("cuda.libcudart", activate=False, env=env)["cuda.libcudart"]
    assert before["status"] == "fail", before
    assert "not on the loader path" in before["summary"]
    assert str(SITE / "nvidia" / "cuda_runtime" / "lib") in before["summary"]
    assert before["fix"].startswith(f"source {ENV}/bin/activate"), before
    assert _fix_and_recheck("cuda.libcudart", before, env=env, activate=False)["status"] == "pass"
    assert verdicts("cuda.libcudart", env=env)["cuda.libcudart"]["status"] == "pass"  # activated: 12 first is harmless


def test_tensorrt_links_removed_are_remade_and_tensorflow_loads_8_5_again() -> None:
    for name in ("libnvinfer.so.7", "libnvinfer_plugin.so.7"):
        (SITE / "tensorrt" / name).unlink()
    before = verdicts("cuda.tensorrt")["cuda.tensorrt"]
    assert before["status"] == "fail" and before["step"] == "links", before
    assert before["fix"] == f"merlin-doctor fix --only links --recipe {RECIPE}"
    assert _fix_and_recheck("cuda.tensorrt", before)["status"] == "pass"
    tf = json.loads(shell(f"python -c {shlex.quote(TENSORFLOW_ANSWERS)} 2>/dev/null").stdout)
    assert tf["loaded"] == [8, 5, 3]
    (SITE / "tensorrt" / "libnvinfer.so.7").unlink()
    assert _run_doctor_fix("cuda.tensorrt")["status"] == "pass"


def test_activation_missing_is_rewritten_and_hooked_again() -> None:
    activate = ENV / "bin" / "activate"
    activate.write_text(
        "".join(line for line in activate.read_text().splitlines(keepends=True) if "merlin-doctor" not in line)
    )
    for script in (ENV / "etc" / "merlin-doctor").glob("*.sh"):
        script.unlink()
    before = verdicts("activation.scripts")["activation.scripts"]
    assert before["status"] == "fail" and before["step"] == "activation", before
    assert before["fix"] == f"merlin-doctor fix --only activation --recipe {RECIPE}", before
    assert _fix_and_recheck("activation.scripts", before)["status"] == "pass"
    assert verdicts("activation.applied")["activation.applied"]["status"] == "pass"  # a new shell has them
    activate.write_text(
        "".join(line for line in activate.read_text().splitlines(keepends=True) if "merlin-doctor" not in line)
    )
    assert _run_doctor_fix("activation.scripts")["status"] == "pass"


@pytest.mark.parametrize(
    "requirement, check_id",
    [
        ("protobuf==4.21.12", "packages.required"),
        ("protobuf==4.21.12", "packages.conflicts"),
        ("numpy==1.24.4", "packages.required"),
    ],
)
def test_a_broken_pin_is_put_back_by_the_printed_pip_command(requirement: str, check_id: str) -> None:
    pip("install", requirement)
    before = verdicts(check_id)[check_id]
    assert before["status"] == "fail", before
    assert before["fix"].startswith("python -m pip install"), before
    assert _fix_and_recheck(check_id, before)["status"] == "pass"


def test_merlin_dataloader_uninstalled_is_reinstalled_by_fix() -> None:
    pip("uninstall", "-y", "merlin-dataloader")
    before = verdicts("packages.required")["packages.required"]
    assert before["status"] == "fail" and "merlin-dataloader==23.8.0" in before["fix"], before
    assert _fix_and_recheck("packages.required", before)["status"] == "pass"
    pip("uninstall", "-y", "merlin-dataloader")
    assert _run_doctor_fix("packages.required")["status"] == "pass"


def test_nvcc_wheel_missing_brings_back_ptxas_and_libdevice_where_xla_looks() -> None:
    pip("uninstall", "-y", "nvidia-cuda-nvcc-cu11")
    found = verdicts("activation.libdevice", "activation.ptxas")
    libdevice, ptxas = found["activation.libdevice"], found["activation.ptxas"]
    wheel = "python -m pip install nvidia-cuda-nvcc-cu11==11.8.89"
    assert libdevice["status"] == "fail" and libdevice["fix"] == wheel and libdevice["step"] == "pip", libdevice
    nvcc_bin = str(SITE / "nvidia" / "cuda_nvcc" / "bin")
    # ptxas: failed with the same fix, unless the machine has one of its own (a system CUDA) XLA falls back to
    assert (ptxas["status"], ptxas["fix"]) == ("fail", wheel) or not ptxas["evidence"]["path"].startswith(nvcc_bin)
    assert _fix_and_recheck("activation.libdevice", libdevice)["status"] == "pass"
    after = verdicts("activation.ptxas")["activation.ptxas"]
    assert after["status"] == "pass" and after["evidence"]["path"] == f"{nvcc_bin}/ptxas", after
    pip("uninstall", "-y", "nvidia-cuda-nvcc-cu11")
    assert _run_doctor_fix("activation.libdevice")["status"] == "pass"


def test_zz_report_the_loop(record_property) -> None:
    """The breaks, the fixes run and what they turned their verdict into (in the report and -rP)."""
    for row in LOOP:
        print(f"{row['check']}: {row['before']} -> `{row['fix']}` -> {row['after']}")
        record_property(row["check"], f"{row['before']} -> {row['after']}")
    assert all(row["after"] == "pass" for row in LOOP), LOOP
