"""Host checks: the OS, glibc, memory, disk, and where we run (container, WSL2)."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from merlin_doctor import knowledge
from merlin_doctor.checks import FactsView, check
from merlin_doctor.recipe import Recipe
from merlin_doctor.verdict import Finding, failed, passed, skipped, warned

GIB = 1024**3


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


@check("host.os", probes=["host"])
def os_supported(facts: FactsView, recipe: Recipe) -> Finding:
    """The OS is Linux (TensorFlow 2.10 GPU builds and RAPIDS are Linux-only)."""
    host = facts["host"]
    wanted = knowledge.load("host")["os"]
    name = host.get("os_release", {}).get("PRETTY_NAME") or host.get("system")
    if host.get("system") != wanted:
        return failed(
            f"{host.get('system')} is not supported: the stack needs {wanted} (or WSL2 on Windows)",
            fix="Use a Linux workstation, WSL2, or the merlin-tensorflow container",
            evidence={"system": host.get("system")},
        )
    return passed(
        f"{name}, kernel {host.get('kernel')}, {host.get('machine')}",
        evidence={"os": name, "kernel": host.get("kernel"), "machine": host.get("machine")},
    )


@check("host.glibc", probes=["host"], needs=["host.os"])
def glibc_new_enough(facts: FactsView, recipe: Recipe) -> Finding:
    """glibc is new enough for the manylinux wheels of TensorFlow and RAPIDS."""
    found = facts["host"].get("glibc")
    minimum = knowledge.load("host")["glibc_min"]
    if not found:
        return skipped("no glibc found (musl-based systems cannot run the TensorFlow wheels)")
    try:
        ok = Version(found) >= Version(minimum)
    except InvalidVersion:
        return warned(f"cannot parse the glibc version {found!r}", evidence={"glibc": found})
    if not ok:
        return failed(
            f"glibc {found} is older than {minimum}, which the TensorFlow 2.10 wheels need",
            fix="Upgrade the OS (e.g. Ubuntu 20.04 or later) or use the merlin-tensorflow container",
            evidence={"glibc": found, "minimum": minimum},
        )
    return passed(f"glibc {found} (>= {minimum})", evidence={"glibc": found, "minimum": minimum})


@check("host.cpu", probes=["host"], needs=["host.os"])
def cpu_instructions(facts: FactsView, recipe: Recipe) -> Finding:
    """The CPU has the instruction sets TensorFlow's wheels are built for (AVX on x86-64)."""
    host = facts["host"]
    machine, flags = host.get("machine"), host.get("cpu_flags")
    needed = knowledge.load("host")["cpu_instructions"].get(machine)
    evidence = {"machine": machine, "cpu": host.get("cpu_model"), "needed": needed}
    if not needed:
        return passed(f"{machine}: no instruction set is known to be required", evidence=evidence)
    if flags is None:
        return skipped(
            f"the CPU's instruction sets could not be read (/proc/cpuinfo); TensorFlow needs "
            f"{', '.join(needed).upper()}",
            evidence=evidence,
        )
    missing = [f for f in needed if f not in flags]
    if missing:
        return failed(
            f"the CPU ({host.get('cpu_model')}) lacks {', '.join(missing).upper()}, which TensorFlow's "
            "wheels are built for: `import tensorflow` dies with 'Illegal instruction'",
            fix="Run on a CPU with AVX (x86-64 since 2011); in a VM, pass the host's CPU model through "
            "(e.g. libvirt/QEMU `-cpu host`), or use a TensorFlow built without AVX",
            evidence={**evidence, "missing": missing},
        )
    return passed(f"the CPU has {', '.join(needed).upper()}, which TensorFlow's wheels need", evidence=evidence)


@check("host.memory", probes=["host"])
def enough_memory(facts: FactsView, recipe: Recipe) -> Finding:
    """Enough RAM to install the stack and train the reference model."""
    total = facts["host"].get("memory_bytes") or 0
    warn_below = knowledge.load("host")["memory_warn_bytes"]
    evidence = {"memory_bytes": total, "warn_below_bytes": warn_below}
    if total < warn_below:
        return warned(
            f"only {_gib(total)} of RAM; below {_gib(warn_below)} installs and training may swap",
            fix="Close other work or use a machine with more memory",
            evidence=evidence,
        )
    return passed(f"{_gib(total)} of RAM", evidence=evidence)


@check("host.disk", probes=["host"])
def enough_disk(facts: FactsView, recipe: Recipe) -> Finding:
    """Enough free disk where the env lives (the full GPU env takes about 12 GB)."""
    disk = facts["host"].get("disk") or {}
    free = disk.get("free_bytes", 0)
    table = knowledge.load("host")
    evidence = {"path": disk.get("path"), "free_bytes": free}
    if free < table["disk_fail_bytes"]:
        return failed(
            f"only {_gib(free)} free on {disk.get('path')}: too little to create the env",
            fix="Free disk space, or create the env elsewhere: ./setup_env --prefix /bigger/disk/merlin",
            evidence=evidence,
        )
    if free < table["disk_warn_bytes"]:
        return warned(
            f"{_gib(free)} free on {disk.get('path')}; the full env and pip's caches need about "
            f"{_gib(table['disk_warn_bytes'])}",
            fix="Free disk space, or create the env elsewhere: ./setup_env --prefix /bigger/disk/merlin",
            evidence=evidence,
        )
    return passed(f"{_gib(free)} free on {disk.get('path')}", evidence=evidence)


@check("host.platform", probes=["host"])
def platform_kind(facts: FactsView, recipe: Recipe) -> Finding:
    """Where the doctor runs: bare metal, a container, or WSL2 (changes where the driver lives)."""
    host = facts["host"]
    kinds = [k for k in (host.get("container") and f"container ({host['container']})", host.get("wsl") and "WSL2") if k]
    where = ", ".join(kinds) or "bare metal or a VM"
    return passed(
        f"running on {where}",
        evidence={
            "container": host.get("container"),
            "wsl": host.get("wsl"),
            "cpu": host.get("cpu_model"),
            "cpus": host.get("cpu_count"),
        },
    )
