"""The NVIDIA driver and its GPUs, through NVML (pynvml). Runs isolated: NVML can hang.

NVML runs in a fork of its own inside the probe, so when the library misbehaves (aborts,
hangs, exits) the probe still answers, naming the file: `libnvidia-ml.so.1` as the loader
opened it, or, when it never got that far, as the loader would find it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from merlin_doctor.probes.context import ProbeContext

SONAME = "libnvidia-ml.so.1"


def _text(value: Any) -> str:
    """A string NVML returned; bytes that are not UTF-8 are shown with replacement characters."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _string(call, *args: Any) -> str:
    """A string query; pynvml's own decode of non-UTF-8 bytes fails, and the bytes are in the error."""
    try:
        return _text(call(*args))
    except UnicodeDecodeError as exc:
        return _text(exc.object)


def _optional(call, *args: Any) -> Any:
    """A per-device query that some GPUs or drivers do not support: None instead of an error."""
    import pynvml

    try:
        return call(*args)
    except (pynvml.NVMLError, UnicodeDecodeError):
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
    call = (
        getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
        or pynvml.nvmlDeviceGetCurrentClocksThrottleReasons
    )
    value = _optional(call, handle)
    return int(value) if value is not None else None


def _devices(pynvml) -> List[Dict[str, Any]]:
    devices = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        mig = _optional(pynvml.nvmlDeviceGetMigMode, handle)
        retired = _optional(
            pynvml.nvmlDeviceGetRetiredPages,
            handle,
            getattr(pynvml, "NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR", 1),
        )
        ecc = _optional(pynvml.nvmlDeviceGetTotalEccErrors, handle, 1, 1)  # uncorrected, aggregate
        devices.append(
            {
                "index": index,
                "name": _string(pynvml.nvmlDeviceGetName, handle),
                "uuid": _optional(lambda h: _string(pynvml.nvmlDeviceGetUUID, h), handle),
                "serial": _optional(lambda h: _string(pynvml.nvmlDeviceGetSerial, h), handle),
                "compute_capability": f"{major}.{minor}",
                "memory_total_bytes": int(memory.total),
                "memory_used_bytes": int(memory.used),
                "persistence_mode": _optional(pynvml.nvmlDeviceGetPersistenceMode, handle),
                "mig_mode": int(mig[0]) if mig else None,
                "processes": [dict(p, **_who(p["pid"])) for p in _processes(pynvml, handle)],
                "throttle_reasons": _throttle(pynvml, handle),
                "retired_pages_double_bit": len(retired) if retired is not None else None,
                "ecc_uncorrected_total": int(ecc) if ecc is not None else None,
            }
        )
    return devices


def _library(pynvml) -> Optional[str]:
    from merlin_doctor.probes.cuda_libs import loaded_path

    lib = getattr(pynvml, "nvmlLib", None)
    return loaded_path(lib) if lib is not None else None


def _query() -> Dict[str, Any]:
    try:
        import pynvml
    except ImportError as exc:
        return {"loaded": False, "error": f"pynvml is not installed: {exc}"}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return {"loaded": False, "library": _library(pynvml), "error": f"nvmlInit failed: {exc}"}
    library = _library(pynvml)
    try:
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()
        return {
            "loaded": True,
            "library": library,
            "driver_version": _string(pynvml.nvmlSystemGetDriverVersion),
            "cuda_driver_version": f"{cuda // 1000}.{cuda % 1000 // 10}",
            "devices": _devices(pynvml),
        }
    except pynvml.NVMLError as exc:
        return {"loaded": True, "library": library, "error": f"NVML query failed: {exc}"}
    finally:
        pynvml.nvmlShutdown()


def probe(ctx: ProbeContext) -> Dict[str, Any]:
    from merlin_doctor.probes.cuda_libs import locate
    from merlin_doctor.probes.isolate import call_in_fork

    # Half a second less than the probe's own limit, so this answer (naming the library) comes first.
    result = call_in_fork(_query, max(0.5, ctx.timeout - 0.5))
    if "loaded" in result:
        return result
    library = locate(SONAME)
    what = f"{SONAME} ({library})" if library else SONAME
    if result.get("timed_out"):
        return {"loaded": False, "library": library, "timed_out": True, "error": f"{what}: {result['error']}"}
    if result.get("crashed"):
        return {
            "loaded": False,
            "library": library,
            "crashed": True,
            "signal": result.get("signal"),
            "error": f"{what} killed the process with {result.get('signal')}",
        }
    return {
        "loaded": False,
        "library": library,
        "crashed": True,
        "error": f"{what} failed without an answer: {result.get('error')}",
    }
