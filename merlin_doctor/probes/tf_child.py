"""What TensorFlow itself says about this environment, gathered in a child process.

Run under the target environment's Python: `python -m merlin_doctor.probes.tf_child
[--progress] [--out FILE]`. It imports TensorFlow, lists its devices, runs a matmul on the
CPU and on each GPU (parity against the CPU), a cuDNN convolution and an XLA-compiled
function on each GPU, asks TF-TRT which TensorRT it linked and loaded, and tries the
Merlin/RAPIDS imports. Each part is guarded: a failure is recorded and the rest still runs.
TensorFlow's C++ log goes to fd 2, which the parent keeps as evidence; each part starts
with a step marker there (`child_io.mark_step`), so the parent knows which lines each part
caused. This JSON says which part failed and its exception, the part's log lines say why.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import platform
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional

from merlin_doctor.probes.child_io import (
    Progress,
    emit,
    error_data,
    hard_exit,
    headline,
    mark_step,
    stdout_to_stderr,
)

SCHEMA_VERSION = 1
NO_GPU = "no GPU visible to TensorFlow"
#: Libraries the Merlin stack imports; cudf and dask_cudf are missing on CPU-only installs.
IMPORTS = ("nvtabular", "merlin.models.tf", "cudf", "dask_cudf")
#: Variables that change what TensorFlow loads or how it compiles, as the child saw them.
ENV_VARS = (
    "CUDA_VISIBLE_DEVICES",
    "LD_LIBRARY_PATH",
    "XLA_FLAGS",
    "TF_CPP_MIN_LOG_LEVEL",
    "TF_FORCE_GPU_ALLOW_GROWTH",
    "TF_ENABLE_ONEDNN_OPTS",
)
MATRIX_SIZE = 512
LOADED_TRT_TIMEOUT_S = 120


def guarded(part: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
    """Run one sub-test: its facts with `ok`, or `ok: false` and the error, never an exception.

    `error` is one line (what a verdict shows); `exception` keeps the type and the whole
    message, which is what the checks explain first."""
    started = time.perf_counter()
    try:
        facts = {"ok": True, **part()}
    except Exception as exc:  # each sub-test's failure is data for the checks
        error = error_data(exc)
        facts = {
            "ok": False,
            "error": headline(error["type"], error["message"]),
            "exception": {"type": error["type"], "message": error["message"]},
            "traceback": error["traceback"],
        }
    facts["seconds"] = round(time.perf_counter() - started, 3)
    return facts


def step(name: str, part: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
    """A guarded part whose log lines are marked as its own (`name` is its path in the facts)."""
    mark_step(name)
    return guarded(part)


def skipped(reason: str) -> Dict[str, Any]:
    return {"ok": None, "skipped": reason}


def collect(progress: Progress) -> Dict[str, Any]:
    """Every fact, in the order that keeps TensorFlow's log lines next to what caused them."""
    started = time.perf_counter()
    result: Dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "env": {name: os.environ.get(name) for name in ENV_VARS},
    }
    progress("stage", stage="import tensorflow")
    holder: Dict[str, Any] = {}

    def import_tf() -> Dict[str, Any]:
        import tensorflow as tf

        holder["tf"] = tf
        return {"version": tf.__version__, "git_version": tf.version.GIT_VERSION}

    result["import"] = step("import", import_tf)
    tf = holder.get("tf")
    if tf is None:
        reason = "tensorflow did not import"
        result["build_info"] = skipped(reason)
        result["devices"] = skipped(reason)
        result["tests"] = {name: skipped(reason) for name in ("matmul", "conv", "xla", "tensorrt")}
    else:
        result["build_info"] = step("build_info", lambda: {"info": _jsonable(dict(tf.sysconfig.get_build_info()))})
        progress("stage", stage="devices")
        result["devices"] = step("devices", lambda: _devices(tf))
        gpus = _gpu_names(tf)
        result["tests"] = {}
        for name, test in (("matmul", _matmul), ("conv", _conv), ("xla", _xla)):
            progress("stage", stage=name)
            result["tests"][name] = step(f"tests.{name}", functools.partial(test, tf, gpus))
        progress("stage", stage="tensorrt")
        result["tests"]["tensorrt"] = step("tests.tensorrt", _tensorrt)
    result["imports"] = {}
    for module in IMPORTS:
        progress("stage", stage=f"import {module}")
        result["imports"][module] = step(f"imports.{module}", functools.partial(_import, module))
    mark_step("end")
    result["wall_s"] = round(time.perf_counter() - started, 3)
    return result


def _devices(tf: Any) -> Dict[str, Any]:
    facts: Dict[str, Any] = {"built_with_cuda": tf.test.is_built_with_cuda()}
    for kind in ("GPU", "CPU"):
        facts[kind] = [_device(tf, d) for d in tf.config.list_physical_devices(kind)]
    facts["tf32_enabled"] = tf.config.experimental.tensor_float_32_execution_enabled()
    return facts


def _device(tf: Any, device: Any) -> Dict[str, Any]:
    facts: Dict[str, Any] = {"name": device.name, "device_type": device.device_type}
    if device.device_type == "GPU":
        try:
            facts["details"] = _jsonable(tf.config.experimental.get_device_details(device))
        except Exception as exc:  # details are a nicety; the device itself was found
            facts["details_error"] = f"{type(exc).__name__}: {exc}"
    return facts


def _gpu_names(tf: Any) -> List[str]:
    """Logical GPU names (`/device:GPU:0`), or none when listing them fails: that failure is in `devices`."""
    try:
        return [d.name for d in tf.config.list_logical_devices("GPU")]
    except Exception:
        return []


def _rel_err(value: Any, reference: Any) -> float:
    import numpy as np

    value, reference = np.asarray(value, dtype="float64"), np.asarray(reference, dtype="float64")
    return float(np.linalg.norm(value - reference) / np.linalg.norm(reference))


def _on(tf: Any, device: str, fn: Callable[[], Any]) -> Dict[str, Any]:
    """Run `fn` pinned to `device`: its result and where TensorFlow actually placed it."""
    with tf.device(device):
        out = fn()
    return {"value": out.numpy(), "placed_on": out.device}


def _compare(tf: Any, gpus: List[str], fn: Callable[[], Any], reference: Any) -> List[Dict[str, Any]]:
    """The same computation on each GPU, each guarded, with its error against `reference`."""
    facts = []
    for name in gpus:

        def run_on_gpu(name: str = name) -> Dict[str, Any]:
            out = _on(tf, name, fn)
            err = _rel_err(out["value"], reference)
            return {"placed_on": out["placed_on"], "rel_err": err}  # judged by the check (knowledge/tensorflow.yml)

        facts.append({"device": name, **guarded(run_on_gpu)})
    return facts


def _matmul(tf: Any, gpus: List[str]) -> Dict[str, Any]:
    """float32 matmul on the CPU (against numpy in float64), then on each GPU (against the CPU)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((MATRIX_SIZE, MATRIX_SIZE)).astype("float32") for _ in range(2))
    cpu = _on(tf, "/CPU:0", lambda: tf.matmul(a, b))
    facts: Dict[str, Any] = {
        "size": MATRIX_SIZE,
        "cpu": {"placed_on": cpu["placed_on"], "rel_err_vs_numpy": _rel_err(cpu["value"], a.astype("float64") @ b)},
    }
    facts["gpus"] = _compare(tf, gpus, lambda: tf.matmul(a, b), cpu["value"]) if gpus else skipped(NO_GPU)
    return facts


def _conv(tf: Any, gpus: List[str]) -> Dict[str, Any]:
    """A 2-D convolution on each GPU (cuDNN) against the same one on the CPU."""
    if not gpus:
        return skipped(NO_GPU)
    import numpy as np

    rng = np.random.default_rng(1)
    images = rng.standard_normal((8, 32, 32, 16)).astype("float32")
    filters = rng.standard_normal((3, 3, 16, 32)).astype("float32")

    def conv() -> Any:
        return tf.nn.conv2d(images, filters, strides=1, padding="SAME")

    cpu = _on(tf, "/CPU:0", conv)
    return {"gpus": _compare(tf, gpus, conv, cpu["value"])}


def _xla(tf: Any, gpus: List[str]) -> Dict[str, Any]:
    """A `jit_compile=True` function on the CPU and on each GPU (GPU needs libdevice and ptxas)."""
    import numpy as np

    x = np.random.default_rng(2).standard_normal((256, 256)).astype("float32")

    def body(m: Any) -> Any:
        return tf.reduce_sum(tf.nn.relu(tf.matmul(m, m)), axis=0)

    def compiled() -> Any:  # a fresh function per device, so each one is traced and compiled there
        return tf.function(body, jit_compile=True)(x)

    expected = np.maximum(x.astype("float64") @ x, 0).sum(axis=0)
    cpu = _on(tf, "/CPU:0", compiled)
    facts: Dict[str, Any] = {"cpu": {"placed_on": cpu["placed_on"], "rel_err": _rel_err(cpu["value"], expected)}}
    facts["gpus"] = _compare(tf, gpus, compiled, expected) if gpus else skipped(NO_GPU)
    return facts


def _tensorrt() -> Dict[str, Any]:
    """TF-TRT: whether its libraries load, and the TensorRT version TF linked vs the one it loads."""
    from tensorflow.compiler.tf2tensorrt import _pywrap_py_utils as trt_utils

    facts: Dict[str, Any] = {
        "linked_version": _version_text(trt_utils.get_linked_tensorrt_version()),
        "enabled": bool(trt_utils.is_tensorrt_enabled()),
        "trt_convert": guarded(_import_trt_convert),
    }
    if facts["enabled"]:
        facts["loaded_version"] = _loaded_tensorrt_version()
    else:
        # Asking for the loaded version when libnvinfer did not load aborts the process
        # (nvinfer_stub.cc: "getInferLibVersion symbol not found"), so it is not asked.
        facts["loaded_version"] = skipped("TF-TRT could not load the TensorRT libraries (see the log)")
    return facts


def _import_trt_convert() -> Dict[str, Any]:
    from tensorflow.python.compiler.tensorrt import trt_convert  # noqa: F401

    return {}


def _loaded_tensorrt_version() -> Dict[str, Any]:
    """Asked in a grandchild: if the loaded libnvinfer lacks the symbol, TensorFlow aborts."""
    code = (
        "from tensorflow.compiler.tf2tensorrt import _pywrap_py_utils as u; "
        "print('.'.join(map(str, u.get_loaded_tensorrt_version())))"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=LOADED_TRT_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {LOADED_TRT_TIMEOUT_S} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines:
        return {"ok": True, "version": lines[-1]}
    return {"ok": False, "error": f"exit code {proc.returncode}", "log_tail": proc.stderr.strip().splitlines()[-10:]}


def _import(module: str) -> Dict[str, Any]:
    """Import `module`; its version is the nearest `__version__` up its dotted path."""
    imported = importlib.import_module(module)
    parts = module.split(".")
    versions = (getattr(sys.modules[".".join(parts[:n])], "__version__", None) for n in range(len(parts), 0, -1))
    return {"version": next((v for v in versions if v), None), "file": getattr(imported, "__file__", None)}


def _version_text(version: Any) -> Optional[str]:
    return ".".join(str(part) for part in version) if version else None


def _jsonable(value: Any) -> Any:
    """Build info and device details hold tuples and OrderedDicts: plain lists and dicts."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m merlin_doctor.probes.tf_child", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--progress", action="store_true", help="PROGRESS {json} lines on stderr")
    parser.add_argument("--out", help="write the JSON here (atomically) instead of stdout")
    args = parser.parse_args(argv)
    with stdout_to_stderr():
        result = collect(Progress(args.progress))
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    hard_exit(main())
