"""The simulated GPU (tests/gpu_sim) behaves like the real NVIDIA libraries through ctypes and pynvml.

Every probe runs in a child process: the loader reads LD_LIBRARY_PATH only at process start, and
some scenarios hang or crash on purpose.
"""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from gpu_sim.build import Compiler, Scenario, Variant, build_scenario, load_scenarios

SCENARIOS = load_scenarios()


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Scenario]:
    """Every scenario, built once per session with one shared compiler."""
    root = tmp_path_factory.mktemp("gpu_sim")
    compiler = Compiler()
    return {name: build_scenario(name, root / name, compiler, SCENARIOS) for name in SCENARIOS}


def probe(scenario: Scenario, code: str, *args: str, **env: str) -> Any:
    """Runs Python code (with args as sys.argv[1:]) against the scenario, with extra environment
    variables env, and returns the JSON it prints last."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**scenario.environ(), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


# --- ELF: sonames and exports -------------------------------------------------------------------


def elf_soname(path: Path) -> str:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    return next(line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(SONAME)" in line)


def exported(path: Path) -> set[str]:
    out = subprocess.run(["nm", "-D", "--defined-only", str(path)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.split()[1] in "TDB"}


def test_every_library_has_its_real_soname(built: dict[str, Scenario]) -> None:
    seen = set()
    for scenario in built.values():
        files = [(lib.soname, lib.file) for lib in scenario.libraries]
        for directory in scenario.system_lib_dirs:
            files += [
                ("libnvidia-ml.so.1", directory / "libnvidia-ml.so.1"),
                ("libcuda.so.1", directory / "libcuda.so.1"),
            ]
        for soname, file in files:
            key = (soname, hashlib.sha256(file.read_bytes()).hexdigest())
            if key not in seen:
                seen.add(key)
                assert elf_soname(file) == soname, file
    assert len(seen) > 20


EXPORTS = {
    "libnvidia-ml.so.1": {
        "nvmlInit",
        "nvmlInit_v2",
        "nvmlInitWithFlags",
        "nvmlShutdown",
        "nvmlErrorString",
        "nvmlSystemGetDriverVersion",
        "nvmlSystemGetNVMLVersion",
        "nvmlSystemGetCudaDriverVersion",
        "nvmlSystemGetCudaDriverVersion_v2",
        "nvmlDeviceGetCount",
        "nvmlDeviceGetCount_v2",
        "nvmlDeviceGetHandleByIndex",
        "nvmlDeviceGetHandleByIndex_v2",
        "nvmlDeviceGetIndex",
        "nvmlDeviceGetName",
        "nvmlDeviceGetUUID",
        "nvmlDeviceGetSerial",
        "nvmlDeviceGetCudaComputeCapability",
        "nvmlDeviceGetMemoryInfo",
        "nvmlDeviceGetMemoryInfo_v2",
        "nvmlDeviceGetPersistenceMode",
        "nvmlDeviceGetMigMode",
        "nvmlDeviceGetComputeRunningProcesses",
        "nvmlDeviceGetComputeRunningProcesses_v2",
        "nvmlDeviceGetComputeRunningProcesses_v3",
        "nvmlDeviceGetCurrentClocksThrottleReasons",
        "nvmlDeviceGetCurrentClocksEventReasons",
        "nvmlDeviceGetRetiredPages",
        "nvmlDeviceGetTotalEccErrors",
        "nvmlDeviceGetPciInfo_v2",
        "nvmlDeviceGetPciInfo_v3",
    },
    "libcuda.so.1": {
        "cuInit",
        "cuDriverGetVersion",
        "cuDeviceGetCount",
        "cuDeviceGet",
        "cuDeviceGetName",
        "cuDeviceComputeCapability",
        "cuDeviceGetAttribute",
        "cuDeviceTotalMem_v2",
        "cuGetErrorName",
        "cuGetErrorString",
    },
    "libcudart.so.11.0": {
        "cudaRuntimeGetVersion",
        "cudaDriverGetVersion",
        "cudaGetDeviceCount",
        "cudaGetErrorName",
        "cudaGetErrorString",
    },
    "libcublas.so.11": {"cublasGetVersion_v2", "cublasGetVersion", "cublasGetProperty", "cublasGetCudartVersion"},
    "libcublasLt.so.11": {"cublasLtGetVersion", "cublasLtGetCudartVersion", "cublasLtGetProperty"},
    "libcufft.so.10": {"cufftGetVersion", "cufftGetProperty"},
    "libcurand.so.10": {"curandGetVersion", "curandGetProperty"},
    "libcusolver.so.11": {"cusolverGetVersion", "cusolverGetProperty"},
    "libcusparse.so.11": {"cusparseGetVersion", "cusparseGetProperty"},
    "libcudnn.so.8": {"cudnnGetVersion", "cudnnGetCudartVersion", "cudnnGetProperty"},
    "libcupti.so.11.2": {"cuptiGetVersion"},
    "libnvinfer.so.8": {"getInferLibVersion"},
    "libnvinfer_plugin.so.8": {"initLibNvInferPlugins"},
}


def test_libraries_export_exactly_the_real_api(built: dict[str, Scenario]) -> None:
    paths = {lib.soname: lib.path for name in ("healthy-t4", "tensorrt8-without-so7") for lib in built[name].libraries}
    driver = built["healthy-t4"].system_lib_dirs[0]
    paths.update({"libnvidia-ml.so.1": driver / "libnvidia-ml.so.1", "libcuda.so.1": driver / "libcuda.so.1"})
    for soname, symbols in EXPORTS.items():
        assert exported(paths[soname]) == symbols, soname


def test_plugin_library_needs_libnvinfer(built: dict[str, Scenario]) -> None:
    scenario = built["tensorrt8-without-so7"]
    plugin = next(lib.path for lib in scenario.libraries if lib.soname == "libnvinfer_plugin.so.8")
    dynamic = subprocess.run(["readelf", "-d", str(plugin)], capture_output=True, text=True, check=True).stdout
    assert "Shared library: [libnvinfer.so.8]" in dynamic
    code = f"import ctypes, json\ntry:\n ctypes.CDLL({str(plugin)!r}); print(json.dumps('loaded'))\nexcept OSError as e:\n print(json.dumps(str(e)))"
    assert probe(scenario, code) == "loaded"
    assert "libnvinfer.so.8: cannot open shared object file" in probe(scenario, code, LD_LIBRARY_PATH="")


# --- NVML through pynvml ------------------------------------------------------------------------

NVML_PROBE = """
import importlib.util, json, sys
from importlib import metadata
# NVIDIA's own bindings (nvidia-ml-py's pynvml.py), even where the old pynvml package that
# merlin-core pins shadows them on sys.path: the stand-in must answer today's calls.
_spec = importlib.util.spec_from_file_location("pynvml", metadata.distribution("nvidia-ml-py").locate_file("pynvml.py"))
pynvml = sys.modules["pynvml"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pynvml)
def opt(f, *a):
    try:
        return f(*a)
    except pynvml.NVMLError as e:
        return "error: " + str(e)
try:
    pynvml.nvmlInit()
except pynvml.NVMLError as e:
    print(json.dumps({"init": str(e), "code": e.value}))
    raise SystemExit
out = {"init": "ok", "driver": pynvml.nvmlSystemGetDriverVersion(), "cuda": pynvml.nvmlSystemGetCudaDriverVersion(),
       "cuda_v2": pynvml.nvmlSystemGetCudaDriverVersion_v2(), "nvml": pynvml.nvmlSystemGetNVMLVersion(), "devices": []}
for i in range(pynvml.nvmlDeviceGetCount()):
    h = pynvml.nvmlDeviceGetHandleByIndex(i)
    memory = pynvml.nvmlDeviceGetMemoryInfo(h)
    memory_v2 = pynvml.nvmlDeviceGetMemoryInfo(h, pynvml.nvmlMemory_v2)
    pci = pynvml.nvmlDeviceGetPciInfo(h)
    out["devices"].append({
        "index": pynvml.nvmlDeviceGetIndex(h), "name": pynvml.nvmlDeviceGetName(h), "uuid": pynvml.nvmlDeviceGetUUID(h),
        "serial": opt(pynvml.nvmlDeviceGetSerial, h), "cc": list(pynvml.nvmlDeviceGetCudaComputeCapability(h)),
        "total": memory.total, "used": memory.used, "free": memory.free,
        "total_v2": memory_v2.total, "used_v2": memory_v2.used,
        "persistence": opt(pynvml.nvmlDeviceGetPersistenceMode, h), "mig": opt(pynvml.nvmlDeviceGetMigMode, h),
        "processes": [[p.pid, p.usedGpuMemory] for p in pynvml.nvmlDeviceGetComputeRunningProcesses(h)],
        "throttle": pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(h),
        "events": pynvml.nvmlDeviceGetCurrentClocksEventReasons(h),
        "retired": opt(pynvml.nvmlDeviceGetRetiredPages, h, pynvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR),
        "ecc": opt(pynvml.nvmlDeviceGetTotalEccErrors, h, pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                   pynvml.NVML_VOLATILE_ECC),
        "bus_id": pci.busId, "bus_id_legacy": pci.busIdLegacy, "pci_device_id": pci.pciDeviceId,
    })
pynvml.nvmlShutdown()
print(json.dumps(out))
"""

NVML_WORKS = [n for n, s in SCENARIOS.items() if s.get("driver") and s["driver"].get("nvml_init", "ok") == "ok"]


@pytest.mark.parametrize("name", NVML_WORKS)
def test_pynvml_reports_the_scenario(built: dict[str, Scenario], name: str) -> None:
    spec = SCENARIOS[name]
    report = probe(built[name], NVML_PROBE)
    cuda_major, cuda_minor = map(int, spec["driver"]["cuda"].split("."))
    assert report["driver"] == spec["driver"]["version"]
    assert report["cuda"] == report["cuda_v2"] == cuda_major * 1000 + cuda_minor * 10
    assert report["nvml"] == f"{cuda_major}.{spec['driver']['version']}"
    assert len(report["devices"]) == len(spec["devices"])
    for i, (got, want) in enumerate(zip(report["devices"], spec["devices"])):
        mib = 1 << 20
        assert got["index"] == i
        assert (got["name"], got["uuid"], got["bus_id"]) == (want["name"], want["uuid"], want["pci_bus_id"])
        assert got["bus_id_legacy"] == want["pci_bus_id"][4:]
        assert got["pci_device_id"] == want["pci_device_id"]
        assert got["cc"] == [int(p) for p in want["cc"].split(".")]
        assert got["total"] == got["total_v2"] == want["memory_mib"] * mib
        assert got["used"] == got["used_v2"] == want.get("used_mib", 0) * mib
        assert got["free"] == got["total"] - got["used"]
        assert got["serial"] == (want["serial"] or "error: Not Supported")
        assert got["persistence"] == (
            want["persistence"] if want["persistence"] != "unsupported" else "error: Not Supported"
        )
        assert got["mig"] == ([want["mig"]] * 2 if want["mig"] != "unsupported" else "error: Not Supported")
        assert got["processes"] == [[p["pid"], p["used_mib"] * mib] for p in want.get("processes", [])]
        assert got["throttle"] == got["events"] == 0
        assert got["ecc"] == (want["ecc_errors"] if want["ecc_errors"] != "unsupported" else "error: Not Supported")
        if want["retired_pages"] == "unsupported":
            assert got["retired"] == "error: Not Supported"
        else:
            assert len(got["retired"]) == want["retired_pages"]


@pytest.mark.parametrize(
    "name, error",
    [
        ("driver-not-loaded", "Driver Not Loaded"),
        ("driver-library-mismatch", "RM has detected an NVML/RM version mismatch."),
    ],
)
def test_pynvml_init_failures(built: dict[str, Scenario], name: str, error: str) -> None:
    assert probe(built[name], NVML_PROBE)["init"] == error


LOADED_FROM = """
import importlib.util, json, sys
from importlib import metadata
# NVIDIA's own bindings (nvidia-ml-py's pynvml.py), even where the old pynvml package that
# merlin-core pins shadows them on sys.path: the stand-in must answer today's calls.
_spec = importlib.util.spec_from_file_location("pynvml", metadata.distribution("nvidia-ml-py").locate_file("pynvml.py"))
pynvml = sys.modules["pynvml"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pynvml)
try:
    pynvml.nvmlInit()
    result = "initialised"
except pynvml.NVMLError as e:
    result = str(e)
maps = [line.split()[-1] for line in open("/proc/self/maps") if "libnvidia-ml" in line or "libcuda" in line]
print(json.dumps({"result": result, "maps": maps}))
"""


@pytest.mark.parametrize("name", ["no-driver", "nouveau"])
def test_no_driver_means_no_nvml(built: dict[str, Scenario], name: str) -> None:
    """A host with a real driver in ld.so.cache would still find its own; none may come from the tree."""
    report = probe(
        built[name], LOADED_FROM + "import ctypes\ntry:\n ctypes.CDLL('libcuda.so.1')\nexcept OSError:\n pass"
    )
    assert not any(path.startswith(str(built[name].root)) for path in report["maps"])
    if not report["maps"]:
        assert report["result"] == "NVML Shared Library Not Found"


def test_config_is_found_next_to_the_tree_without_the_variable(built: dict[str, Scenario]) -> None:
    scenario = built["driver-455"]
    assert probe(scenario, NVML_PROBE, GPU_SIM_CONFIG="")["driver"] == "455.45.01"


def test_missing_config_acts_as_driver_not_loaded(built: dict[str, Scenario], tmp_path: Path) -> None:
    scenario = built["healthy-t4"]
    result = subprocess.run(
        [sys.executable, "-c", NVML_PROBE],
        env={**scenario.environ(), "GPU_SIM_CONFIG": str(tmp_path / "absent.conf")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert json.loads(result.stdout)["init"] == "Driver Not Loaded"
    assert "gpu_sim: no gpu_sim.conf" in result.stderr


# --- CUDA driver and runtime through ctypes -----------------------------------------------------

CUDA_PROBE = """
import ctypes, json
cuda = ctypes.CDLL("libcuda.so.1")
def name(code):
    s = ctypes.c_char_p()
    return s.value.decode() if cuda.cuGetErrorName(code, ctypes.byref(s)) == 0 else None
version = ctypes.c_int()
cuda.cuDriverGetVersion(ctypes.byref(version))
count = ctypes.c_int(-1)
before = cuda.cuDeviceGetCount(ctypes.byref(count))
init = cuda.cuInit(0)
out = {"version": version.value, "before_init": name(before), "init": name(init), "devices": []}
if init == 0:
    cuda.cuDeviceGetCount(ctypes.byref(count))
    for i in range(count.value):
        dev, major, minor, attr_major, total = ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.c_size_t()
        buf = ctypes.create_string_buffer(100)
        assert cuda.cuDeviceGet(ctypes.byref(dev), i) == 0
        cuda.cuDeviceGetName(buf, 100, dev)
        cuda.cuDeviceComputeCapability(ctypes.byref(major), ctypes.byref(minor), dev)
        cuda.cuDeviceGetAttribute(ctypes.byref(attr_major), 75, dev)
        cuda.cuDeviceTotalMem_v2(ctypes.byref(total), dev)
        out["devices"].append([buf.value.decode(), major.value, minor.value, attr_major.value, total.value])
    out["bad_ordinal"] = name(cuda.cuDeviceGet(ctypes.byref(dev), count.value))
s = ctypes.c_char_p()
cuda.cuGetErrorString(init, ctypes.byref(s))
out["text"] = s.value.decode()
print(json.dumps(out))
"""


@pytest.mark.parametrize(
    "name, init, devices",
    [
        ("healthy-t4", "CUDA_SUCCESS", [["Tesla T4", 7, 5, 7, 15360 << 20]]),
        ("h100", "CUDA_SUCCESS", [["NVIDIA H100 80GB HBM3", 9, 0, 9, 81559 << 20]]),
        ("wsl2", "CUDA_SUCCESS", [["NVIDIA GeForce RTX 3090", 8, 6, 8, 24576 << 20]]),
        ("nvml-no-device", "CUDA_ERROR_NO_DEVICE", []),
        ("cuda-visible-devices-empty", "CUDA_ERROR_NO_DEVICE", []),
        ("cuda-visible-devices-minus-one", "CUDA_ERROR_NO_DEVICE", []),
        ("cuda-visible-devices-missing", "CUDA_ERROR_NO_DEVICE", []),
        ("mig-on", "CUDA_ERROR_NO_DEVICE", []),
        ("driver-not-loaded", "CUDA_ERROR_NO_DEVICE", []),
        ("driver-library-mismatch", "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", []),
    ],
)
def test_cuinit(built: dict[str, Scenario], name: str, init: str, devices: list) -> None:
    report = probe(built[name], CUDA_PROBE)
    cuda = SCENARIOS[name]["driver"]["cuda"].split(".")
    assert report["version"] == int(cuda[0]) * 1000 + int(cuda[1]) * 10
    assert report["before_init"] == "CUDA_ERROR_NOT_INITIALIZED"
    assert report["init"] == init
    assert report["devices"] == devices
    if devices:
        assert report["bad_ordinal"] == "CUDA_ERROR_INVALID_DEVICE"
    else:
        assert report["text"] != "no error"


def test_nvml_ignores_cuda_visible_devices(built: dict[str, Scenario]) -> None:
    assert len(probe(built["cuda-visible-devices-empty"], NVML_PROBE)["devices"]) == 1


def test_cuda_visible_devices_accepts_uuid_prefix(built: dict[str, Scenario]) -> None:
    scenario = built["healthy-t4"]
    prefix = scenario.spec["devices"][0]["uuid"][:12]
    assert probe(scenario, CUDA_PROBE, CUDA_VISIBLE_DEVICES=prefix)["init"] == "CUDA_SUCCESS"
    assert probe(scenario, CUDA_PROBE, CUDA_VISIBLE_DEVICES="0,0")["devices"][0][0] == "Tesla T4"
    assert probe(scenario, CUDA_PROBE, CUDA_VISIBLE_DEVICES="GPU-ffff")["init"] == "CUDA_ERROR_NO_DEVICE"


CUDART_PROBE = """
import ctypes, json
rt = ctypes.CDLL("libcudart.so.11.0")
rt.cudaGetErrorName.restype = rt.cudaGetErrorString.restype = ctypes.c_char_p
runtime, driver, count = ctypes.c_int(), ctypes.c_int(-1), ctypes.c_int(-1)
rt.cudaRuntimeGetVersion(ctypes.byref(runtime))
rt.cudaDriverGetVersion(ctypes.byref(driver))
error = rt.cudaGetDeviceCount(ctypes.byref(count))
print(json.dumps([runtime.value, driver.value, rt.cudaGetErrorName(error).decode(),
                  rt.cudaGetErrorString(error).decode(), count.value]))
"""


@pytest.mark.parametrize(
    "name, driver, error, count",
    [
        ("healthy-t4", 12000, "cudaSuccess", 1),
        ("driver-455", 11010, "cudaSuccess", 1),
        ("driver-418", 10010, "cudaErrorInsufficientDriver", 0),
        ("no-driver", 0, "cudaErrorInsufficientDriver", 0),
        ("cuda-visible-devices-empty", 12000, "cudaErrorNoDevice", 0),
    ],
)
def test_cudart(built: dict[str, Scenario], name: str, driver: int, error: str, count: int) -> None:
    runtime, got_driver, got_error, text, got_count = probe(built[name], CUDART_PROBE)
    assert (runtime, got_driver, got_error, got_count) == (11020, driver, error, count)
    if error == "cudaErrorInsufficientDriver":
        assert text == "CUDA driver version is insufficient for CUDA runtime version"


# --- What each toolkit library reports ------------------------------------------------------------

VERSION_PROBE = """
import ctypes, json, sys
CALLS = {
    "libcudart": ("cudaRuntimeGetVersion", None), "libcublas": ("cublasGetVersion_v2", "cublasGetProperty"),
    "libcublasLt": ("cublasLtGetVersion", "cublasLtGetProperty"), "libcufft": ("cufftGetVersion", "cufftGetProperty"),
    "libcurand": ("curandGetVersion", "curandGetProperty"), "libcusolver": ("cusolverGetVersion", "cusolverGetProperty"),
    "libcusparse": ("cusparseGetVersion", "cusparseGetProperty"), "libcudnn": ("cudnnGetVersion", "cudnnGetProperty"),
    "libnvinfer": ("getInferLibVersion", None), "libnvinfer_plugin": ("getInferLibVersion", None),
    "libcupti": ("cuptiGetVersion", None),
}
out = {}
for key, path in json.loads(sys.argv[1]).items():
    lib = ctypes.CDLL(path)
    stem = path.rsplit("/", 1)[-1].split(".so")[0]
    version_fn, property_fn = CALLS[stem]
    fn = getattr(lib, version_fn)
    if version_fn in ("cublasLtGetVersion", "cudnnGetVersion"):
        fn.restype = ctypes.c_size_t
        version = fn()
    elif version_fn == "getInferLibVersion":
        version = fn()
    else:
        value = ctypes.c_uint() if version_fn == "cuptiGetVersion" else ctypes.c_int()
        args = [None] if version_fn in ("cublasGetVersion_v2", "cusparseGetVersion") else []
        assert fn(*args, ctypes.byref(value)) == 0
        version = value.value
    parts = []
    for prop in range(3) if property_fn else []:
        value = ctypes.c_int()
        assert getattr(lib, property_fn)(prop, ctypes.byref(value)) == 0
        parts.append(value.value)
    out[key] = [version, parts]
print(json.dumps(out))
"""


def reported(scenario: Scenario, libraries: dict[str, str]) -> dict[str, list]:
    """[version call's result, [major, minor, patch] from *GetProperty or []] per library, each
    loaded by absolute path or by soname through LD_LIBRARY_PATH."""
    return probe(scenario, VERSION_PROBE, json.dumps(libraries))


# (scenario, libs key) -> what the library's own version call returns, in the real encodings.
REPORTED_VERSIONS = {
    ("healthy-t4", "cudart"): 11020,
    ("healthy-t4", "cublas"): 11401,
    ("healthy-t4", "cublasLt"): 11401,
    ("healthy-t4", "cufft"): 10401,
    ("healthy-t4", "curand"): 10203,
    ("healthy-t4", "cusolver"): 11100,
    ("healthy-t4", "cusparse"): 11401,
    ("healthy-t4", "cudnn"): 8600,
    ("healthy-t4", "cupti"): 15,
    ("cublas-twice", "pip-cublas"): 111003,
    ("cublas-twice", "pip-cublasLt"): 111003,
    ("cublas-twice", "cublas"): 11401,
    ("cudnn-8.0.5", "cudnn"): 8005,
    ("cudnn-8.9", "cudnn"): 8906,
    ("cudnn-stray-conda", "cudnn"): 8600,
    ("cudnn-stray-conda", "conda-cudnn"): 8100,
    ("tensorrt8-without-so7", "nvinfer"): 8503,
    ("tensorrt8-without-so7", "nvinfer_plugin"): 8503,
    ("shadow-cuda-10.2", "cuda102-cudart"): 10020,
    ("shadow-cuda-10.2", "cuda102-cufft"): 10102,
    ("shadow-cuda-10.2", "cuda102-curand"): 10102,
    ("shadow-cuda-10.2", "cuda102-cudnn"): 8005,
    ("cuda12-libs-only", "cudart"): 12020,
    ("cuda12-libs-only", "cublas"): 120205,
    ("cuda12-libs-only", "cufft"): 11008,
    ("cuda12-libs-only", "cusolver"): 11502,
    ("cuda12-libs-only", "cudnn"): 8904,
}


@pytest.mark.parametrize("name", sorted({name for name, _ in REPORTED_VERSIONS}))
def test_each_copy_reports_its_own_version(built: dict[str, Scenario], name: str) -> None:
    scenario = built[name]
    versions = reported(
        scenario,
        {
            lib.key: str(lib.file)
            for lib in scenario.libraries
            if not scenario.spec["libs"][lib.key].get("crash_on_load")
        },
    )
    for (owner, key), expected in REPORTED_VERSIONS.items():
        if owner == name:
            assert versions[key][0] == expected, key
    for lib in scenario.libraries:
        _, parts = versions[lib.key]
        if parts:
            assert parts == [int(p) for p in lib.version.split(".")[:3]], lib.key


@pytest.mark.parametrize(
    "name, soname, expected",
    [
        ("cublas-twice", "libcublas.so.11", 111003),  # pip's directory comes first
        ("shadow-cuda-10.2", "libcudnn.so.8", 8005),  # /usr/local/cuda-10.2/lib64 comes first
        ("shadow-cuda-10.2", "libcufft.so.10", 10102),
        ("tensorrt-symlinked", "libnvinfer.so.7", 8503),  # the .so.7 symlink reaches TensorRT 8.5
        ("tensorrt-symlinked", "libnvinfer_plugin.so.7", 8503),
    ],
)
def test_loader_search_order_decides_which_copy_answers(
    built: dict[str, Scenario], name: str, soname: str, expected: int
) -> None:
    assert reported(built[name], {"lib": soname})["lib"][0] == expected


def test_tensorrt_so7_missing_gives_the_loader_error(built: dict[str, Scenario]) -> None:
    code = (
        "import ctypes, json\ntry:\n ctypes.CDLL('libnvinfer.so.7')\nexcept OSError as e:\n print(json.dumps(str(e)))"
    )
    assert (
        probe(built["tensorrt8-without-so7"], code)
        == "libnvinfer.so.7: cannot open shared object file: No such file or directory"
    )


def test_cudnn_reports_the_runtime_it_was_built_for(built: dict[str, Scenario]) -> None:
    code = (
        "import ctypes, json\nout = []\nfor p in {paths!r}:\n lib = ctypes.CDLL(p)\n"
        " lib.cudnnGetCudartVersion.restype = ctypes.c_size_t\n out.append(lib.cudnnGetCudartVersion())\n"
        "print(json.dumps(out))"
    )
    scenario = built["shadow-cuda-10.2"]
    paths = [str(lib.file) for lib in scenario.libraries if lib.soname == "libcudnn.so.8"]
    assert sorted(probe(scenario, code.format(paths=paths))) == [10020, 11020]


# --- Hangs and crashes --------------------------------------------------------------------------

HANGING_CALLS = [
    "import pynvml; print('loaded', flush=True); pynvml.nvmlInit()",
    "import ctypes; lib = ctypes.CDLL('libcuda.so.1'); print('loaded', flush=True); lib.cuInit(0)",
    "import ctypes; lib = ctypes.CDLL('libcudart.so.11.0'); print('loaded', flush=True); "
    "lib.cudaGetDeviceCount(ctypes.byref(ctypes.c_int()))",
]


def test_init_really_hangs(built: dict[str, Scenario]) -> None:
    """Each child loads its library, says so, then blocks in the init call until it is killed."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=built["init-hangs"].environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for code in HANGING_CALLS
    ]
    deadline = time.monotonic() + 3
    for code, child in zip(HANGING_CALLS, children):
        try:
            out, err = child.communicate(timeout=max(0.1, deadline - time.monotonic()))
            pytest.fail(f"returned {child.returncode} instead of hanging: {code}\n{err}")
        except subprocess.TimeoutExpired:
            child.kill()
            out, _ = child.communicate()
        assert out == "loaded\n", code


def test_segv_on_load_kills_the_loading_process(built: dict[str, Scenario]) -> None:
    scenario = built["segv-on-load"]
    crashed = scenario.run([sys.executable, "-c", "import ctypes; ctypes.CDLL('libcudnn.so.8')"])
    assert crashed.returncode == -signal.SIGSEGV
    fine = scenario.run(
        [sys.executable, "-c", "import ctypes; ctypes.CDLL('libcublas.so.11'); ctypes.CDLL('libcuda.so.1')"]
    )
    assert fine.returncode == 0, fine.stderr


def test_segv_on_init_is_configurable(built: dict[str, Scenario], tmp_path: Path) -> None:
    scenario = built["healthy-t4"]
    config = tmp_path / "gpu_sim.conf"
    config.write_text((scenario.root / "gpu_sim.conf").read_text().replace("cu_init=ok", "cu_init=segv"))
    result = subprocess.run(
        [sys.executable, "-c", "import ctypes; ctypes.CDLL('libcuda.so.1').cuInit(0)"],
        env={**scenario.environ(), "GPU_SIM_CONFIG": str(config)},
        timeout=30,
    )
    assert result.returncode == -signal.SIGSEGV


# --- The tree -----------------------------------------------------------------------------------


def test_conda_layout_and_ownership(built: dict[str, Scenario]) -> None:
    scenario = built["healthy-t4"]
    link = scenario.prefix / "lib/libcudart.so.11.0"
    assert link.is_symlink() and link.resolve().name == "libcudart.so.11.2.152"
    meta = json.loads((scenario.prefix / "conda-meta/cudatoolkit-11.2.2-hbe64b41_10.json").read_text())
    assert {"lib/libcudart.so.11.0", "lib/libcudart.so.11.2.152", "lib/libdevice.10.bc"} <= set(meta["files"])
    assert not list((scenario.prefix / "conda-meta").glob("cudnn-*.json")), "cuDNN comes from the wheel alone"
    wheel = scenario.prefix / "lib/python3.9/site-packages/nvidia/cudnn/lib/libcudnn.so.8"
    assert wheel.is_file() and not wheel.is_symlink()
    assert scenario.env["CONDA_PREFIX"] == str(scenario.prefix)
    assert scenario.env["MERLIN_DOCTOR_SYSROOT"] == str(scenario.root)
    assert scenario.env["LD_LIBRARY_PATH"].split(":") == [
        str(wheel.parent),
        str(scenario.prefix / "lib"),
        str(scenario.root / "usr/lib/x86_64-linux-gnu"),
    ]
    assert (scenario.root / "dev/nvidia0").exists() and not (scenario.root / "dev/dxg").exists()
    assert "nvidia " in (scenario.root / "proc/modules").read_text()


def test_pip_record_lists_hashes_of_the_files(built: dict[str, Scenario]) -> None:
    scenario = built["cublas-twice"]
    site = scenario.prefix / "lib/python3.9/site-packages"
    record = (site / "nvidia_cublas_cu11-11.10.3.66.dist-info/RECORD").read_text().splitlines()
    row = next(r for r in record if r.startswith("nvidia/cublas/lib/libcublas.so.11,"))
    data = (site / "nvidia/cublas/lib/libcublas.so.11").read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    assert row == f"nvidia/cublas/lib/libcublas.so.11,sha256={digest},{len(data)}"
    assert not (site / "nvidia/cublas/lib/libcublas.so.11").is_symlink()


def test_wsl2_layout(built: dict[str, Scenario]) -> None:
    root = built["wsl2"].root
    wsl = root / "usr/lib/wsl/lib"
    for name in ("libcuda.so", "libcuda.so.1", "libcuda.so.1.1", "libnvidia-ml.so.1"):
        assert (wsl / name).is_file() and not (wsl / name).is_symlink()
    assert (root / "dev/dxg").exists()
    assert not (root / "proc/driver/nvidia").exists() and not (root / "dev/nvidia0").exists()
    assert "microsoft-standard-WSL2" in (root / "proc/version").read_text()


@pytest.mark.parametrize("name", ["no-driver", "driver-not-loaded"])
def test_no_kernel_module(built: dict[str, Scenario], name: str) -> None:
    root = built[name].root
    assert not (root / "proc/driver/nvidia").exists()
    assert not list(root.glob("dev/nvidia*"))
    assert "nvidia" not in (root / "proc/modules").read_text()


def test_kernel_module_version_can_differ_from_the_libraries(built: dict[str, Scenario]) -> None:
    text = (built["driver-library-mismatch"].root / "proc/driver/nvidia/version").read_text()
    assert "Kernel Module  525.85.12 " in text
    assert (built["driver-library-mismatch"].root / "usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05").exists()


def test_ptxas_answers_version_through_path(built: dict[str, Scenario]) -> None:
    result = built["healthy-t4"].run(["ptxas", "--version"])
    assert result.returncode == 0
    assert "Cuda compilation tools, release 11.2, V11.2.152" in result.stdout


def test_tensorflow_build_info_is_readable(built: dict[str, Scenario]) -> None:
    path = built["healthy-t4"].prefix / "lib/python3.9/site-packages/tensorflow/python/platform/build_info.py"
    namespace: dict[str, Any] = {}
    exec(path.read_text(), namespace)
    assert namespace["build_info"]["cuda_compute_capabilities"][-1] == "compute_80"
    assert namespace["build_info"]["cudnn_version"] == "8"


def test_environ_drops_host_gpu_variables(built: dict[str, Scenario]) -> None:
    scenario = built["healthy-t4"]
    env = scenario.environ({"HOME": "/root", "CUDA_VISIBLE_DEVICES": "3", "LD_PRELOAD": "x.so", "GPU_SIM_X": "1"})
    assert env["HOME"] == "/root" and "CUDA_VISIBLE_DEVICES" not in env and "LD_PRELOAD" not in env
    assert "GPU_SIM_X" not in env and env["GPU_SIM_CONFIG"] == str(scenario.root / "gpu_sim.conf")
    assert built["cuda-visible-devices-empty"].environ({})["CUDA_VISIBLE_DEVICES"] == ""


# --- Data and build machinery -------------------------------------------------------------------


def test_scenario_data_errors_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text("gpus: {}\nscenarios:\n  a: {extends: b}\n")
    with pytest.raises(ValueError, match="unknown scenario 'b'"):
        load_scenarios(path)
    path.write_text("gpus: {}\nscenarios:\n  a: {drivr: {}}\n")
    with pytest.raises(ValueError, match=r"unknown keys \['drivr'\]"):
        load_scenarios(path)
    path.write_text("gpus: {}\nscenarios:\n  a: {libs: {x: {soname: libcudnn.so.8, version: 8.9, dir: env/lib}}}\n")
    with pytest.raises(ValueError, match="expected a quoted string, got 8.9"):
        build_scenario("a", tmp_path / "a", scenarios=load_scenarios(path))


def test_variants_are_compiled_once(tmp_path: Path) -> None:
    compiler = Compiler(tmp_path)
    first = compiler.compile(Variant("libcudnn.so.8", "8.1.0", "11.2"))
    assert compiler.compile(Variant("libcudnn.so.8", "8.1.0", "11.2")) == first
    assert compiler.compile(Variant("libcudnn.so.8", "8.0.5", "11.2")) != first
    assert len(list(tmp_path.iterdir())) == 2
    with pytest.raises(ValueError, match="no stand-in for libfoo.so.1"):
        compiler.compile(Variant("libfoo.so.1", "1.0", "11.2"))
