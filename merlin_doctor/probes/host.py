"""Host facts: OS, glibc, kernel, CPU, memory, free disk where the env lives, and the
platform it runs on (a container, WSL 1 or 2): the one probe that says so. Files are read
under the context's root, so the simulated machines of the tests are judged like real ones."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from merlin_doctor.probes.context import ProbeContext


def _read(path: str, limit: int = 65536) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)
    except OSError:
        return None


def _os_release(ctx: ProbeContext) -> Dict[str, str]:
    text = _read(ctx.host_path("/etc/os-release")) or ""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    return {k: fields[k] for k in ("ID", "VERSION_ID", "PRETTY_NAME") if k in fields}


def _glibc() -> Optional[str]:
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36"
    except (ValueError, OSError, AttributeError):
        value = None
    if value and value.startswith("glibc "):
        return value.split()[1]
    lib, version = platform.libc_ver()
    return version if lib == "glibc" and version else None


def _cpu_model(ctx: ProbeContext) -> Optional[str]:
    for line in (_read(ctx.host_path("/proc/cpuinfo"), 8192) or "").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or None


def _cpu_flags(ctx: ProbeContext) -> Optional[List[str]]:
    """The instruction-set flags of the first CPU (/proc/cpuinfo `flags`, `Features` on ARM)."""
    for line in (_read(ctx.host_path("/proc/cpuinfo"), 65536) or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return sorted(value.split())
    return None


def _container(ctx: ProbeContext) -> Optional[str]:
    if os.path.exists(ctx.host_path("/.dockerenv")):
        return "docker"
    if os.path.exists(ctx.host_path("/run/.containerenv")):
        return "podman"
    cgroup = _read(ctx.host_path("/proc/1/cgroup")) or ""
    for name in ("docker", "kubepods", "containerd", "lxc"):
        if name in cgroup:
            return name
    return None


def _wsl(ctx: ProbeContext) -> Dict[str, Any]:
    """WSL and its version: WSL 2's kernel says `microsoft-standard-WSL2`, WSL 1's (a translation
    layer with no GPU at all) `4.4.0-NNNNN-Microsoft`; /usr/lib/wsl/lib holds the GPU driver's libraries."""
    proc_version = (_read(ctx.host_path("/proc/version")) or "").lower()
    wsl_lib = ctx.host_path("/usr/lib/wsl/lib")
    has_lib = os.path.isdir(wsl_lib)
    version = None
    if "microsoft" in proc_version or has_lib:
        version = 2 if "wsl2" in proc_version or "microsoft-standard" in proc_version or has_lib else 1
    return {
        "wsl": version is not None,
        "wsl_version": version,
        "wsl_lib": sorted(os.listdir(wsl_lib)) if has_lib else [],
    }


def _disk(path: str) -> Dict[str, Any]:
    """Free space on the file system holding `path`, or its nearest existing parent."""
    target = Path(path)
    while not target.exists() and target != target.parent:
        target = target.parent
    usage = shutil.disk_usage(str(target))
    return {"path": str(target), "free_bytes": usage.free, "total_bytes": usage.total}


def _memory_bytes() -> Optional[int]:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def probe(ctx: ProbeContext) -> Dict[str, Any]:
    # The env judged; in a shell, the activated one; in a Jupyter kernel (no VIRTUAL_ENV), the kernel's own.
    env_dir = ctx.judged_prefix() or sys.prefix
    return {
        "system": platform.system(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "os_release": _os_release(ctx),
        "glibc": _glibc(),
        "cpu_model": _cpu_model(ctx),
        "cpu_count": os.cpu_count(),
        "cpu_flags": _cpu_flags(ctx),
        "memory_bytes": _memory_bytes(),
        "disk": _disk(env_dir),
        "container": _container(ctx),
        **_wsl(ctx),
    }
