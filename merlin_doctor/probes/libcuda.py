"""The CUDA driver API through libcuda.so.1: what TensorFlow's cuInit will see. Runs isolated."""

from __future__ import annotations

import ctypes
from typing import Any, Dict, List

from merlin_doctor.probes.context import ProbeContext


def _error_name(lib: ctypes.CDLL, code: int) -> str:
    name = ctypes.c_char_p()
    try:
        if lib.cuGetErrorName(code, ctypes.byref(name)) == 0 and name.value:
            return name.value.decode()
    except AttributeError:
        pass
    return f"CUresult {code}"


def _devices(lib: ctypes.CDLL) -> List[Dict[str, Any]]:
    count = ctypes.c_int()
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return []
    devices = []
    for ordinal in range(count.value):
        dev, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        name = ctypes.create_string_buffer(256)
        lib.cuDeviceGet(ctypes.byref(dev), ordinal)
        lib.cuDeviceGetName(name, 256, dev)
        lib.cuDeviceGetAttribute(ctypes.byref(major), 75, dev)  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
        lib.cuDeviceGetAttribute(ctypes.byref(minor), 76, dev)  # ..._MINOR
        devices.append(
            {
                "ordinal": ordinal,
                "name": name.value.decode(errors="replace"),
                "compute_capability": f"{major.value}.{minor.value}",
            }
        )
    return devices


def probe(ctx: ProbeContext) -> Dict[str, Any]:
    from merlin_doctor.probes.cuda_libs import loaded_path

    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        return {"loaded": False, "error": str(exc)}
    version = ctypes.c_int()
    result: Dict[str, Any] = {"loaded": True, "path": loaded_path(lib)}
    if lib.cuDriverGetVersion(ctypes.byref(version)) == 0:
        result["driver_cuda_version"] = f"{version.value // 1000}.{version.value % 1000 // 10}"
    code = lib.cuInit(0)
    result["cu_init"] = "CUDA_SUCCESS" if code == 0 else _error_name(lib, code)
    result["devices"] = _devices(lib) if code == 0 else []
    return result
