"""The NVIDIA driver and its GPUs, through NVML (pynvml). Runs isolated: NVML can hang."""
from __future__ import annotations

from typing import Any, Dict, List

from merlin_doctor.probes import ProbeContext


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _devices(pynvml) -> List[Dict[str, Any]]:
    devices = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        devices.append({
            "index": index,
            "name": _text(pynvml.nvmlDeviceGetName(handle)),
            "compute_capability": f"{major}.{minor}",
            "memory_total_bytes": int(memory.total),
            "memory_used_bytes": int(memory.used),
        })
    return devices


def probe(ctx: ProbeContext) -> Dict[str, Any]:
    try:
        import pynvml
    except ImportError as exc:
        return {"loaded": False, "error": f"pynvml is not installed: {exc}"}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return {"loaded": False, "error": f"nvmlInit failed: {exc}"}
    try:
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()
        return {
            "loaded": True,
            "driver_version": _text(pynvml.nvmlSystemGetDriverVersion()),
            "cuda_driver_version": f"{cuda // 1000}.{cuda % 1000 // 10}",
            "devices": _devices(pynvml),
        }
    except pynvml.NVMLError as exc:
        return {"loaded": True, "error": f"NVML query failed: {exc}"}
    finally:
        pynvml.nvmlShutdown()
