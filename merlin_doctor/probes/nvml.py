"""The NVIDIA driver and its GPUs, through NVML (pynvml). Runs isolated: NVML can hang."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from merlin_doctor.probes.context import ProbeContext


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _optional(call, *args: Any) -> Any:
    """A per-device query that some GPUs or drivers do not support: None instead of an error."""
    import pynvml

    try:
        return call(*args)
    except pynvml.NVMLError:
        return None


CMDLINE_CHARS = 500


def _processes(pynvml, handle) -> List[Dict[str, Any]]:
    procs = _optional(pynvml.nvmlDeviceGetComputeRunningProcesses, handle) or []
    return [{"pid": int(p.pid), "used_memory_bytes": int(p.usedGpuMemory or 0)} for p in procs]


def _who(pid: int) -> Dict[str, Any]:
    """Name, user and command line of a process holding a GPU. psutil is imported here, and
    only for a GPU that has processes, so `check --fast` never pays for it."""
    try:
        import psutil
    except ImportError as exc:
        return {"error": f"psutil is not installed: {exc}"}
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            facts: Dict[str, Any] = {"name": proc.name(), "user": proc.username()}
            try:
                facts["cmdline"] = " ".join(proc.cmdline())[:CMDLINE_CHARS]
            except psutil.AccessDenied:
                facts["cmdline"] = None
        return facts
    except psutil.NoSuchProcess:
        return {"error": "no such process here: it exited, or it runs in another PID namespace (a container)"}
    except psutil.AccessDenied:
        return {"error": "access denied"}


def _throttle(pynvml, handle) -> Optional[int]:
    call = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
        pynvml.nvmlDeviceGetCurrentClocksThrottleReasons
    value = _optional(call, handle)
    return int(value) if value is not None else None


def _devices(pynvml) -> List[Dict[str, Any]]:
    devices = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        mig = _optional(pynvml.nvmlDeviceGetMigMode, handle)
        retired = _optional(pynvml.nvmlDeviceGetRetiredPages, handle,
                            getattr(pynvml, "NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR", 1))
        ecc = _optional(pynvml.nvmlDeviceGetTotalEccErrors, handle, 1, 1)  # uncorrected, aggregate
        devices.append({
            "index": index,
            "name": _text(pynvml.nvmlDeviceGetName(handle)),
            "uuid": _optional(lambda h: _text(pynvml.nvmlDeviceGetUUID(h)), handle),
            "serial": _optional(lambda h: _text(pynvml.nvmlDeviceGetSerial(h)), handle),
            "compute_capability": f"{major}.{minor}",
            "memory_total_bytes": int(memory.total),
            "memory_used_bytes": int(memory.used),
            "persistence_mode": _optional(pynvml.nvmlDeviceGetPersistenceMode, handle),
            "mig_mode": int(mig[0]) if mig else None,
            "processes": [dict(p, **_who(p["pid"])) for p in _processes(pynvml, handle)],
            "throttle_reasons": _throttle(pynvml, handle),
            "retired_pages_double_bit": len(retired) if retired is not None else None,
            "ecc_uncorrected_total": int(ecc) if ecc is not None else None,
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
