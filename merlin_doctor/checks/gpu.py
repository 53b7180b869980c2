"""GPU checks: the driver, the kernel module, visible devices, the CUDA driver API, architectures."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from packaging.version import Version

from merlin_doctor import knowledge
from merlin_doctor.checks import FactsView, check
from merlin_doctor.checks.libversion import entry_for, reported_version, spec_for
from merlin_doctor.recipe import Recipe
from merlin_doctor.verdict import Finding, failed, passed, warned


def driver_requirement(recipe) -> str:
    """`>= 460.27.03` for the recipe's CUDA runtime, from the knowledge table."""
    cuda = recipe.expect.cuda_runtime
    row = knowledge.load("cuda_drivers")["cuda"].get(str(cuda)) if cuda else None
    return f">= {row['toolkit']}" if row else "a current NVIDIA driver"


@check("gpu.nvml", probes=["nvml"], gpu=True)
def nvml_sees_gpu(facts: FactsView, recipe: Recipe) -> Finding:
    """The NVIDIA driver's NVML library loads and sees at least one GPU."""
    nvml = facts["nvml"]
    need = driver_requirement(recipe)
    error = nvml.get("error") or ""
    if nvml.get("timed_out"):
        return failed(
            f"NVML did not answer: {error} — the driver is wedged",
            fix="sudo nvidia-smi  # if it hangs too, reboot",
            evidence={"error": error, "timed_out": True},
        )
    if nvml.get("crashed"):
        return failed(
            f"the NVIDIA driver's NVML library is broken: {error}",
            fix="Reinstall the NVIDIA driver (e.g. `sudo ubuntu-drivers install`) so that its "
            "libnvidia-ml.so.1 matches the kernel module, then reboot; `nvidia-smi` must answer",
            evidence={"error": error, "library": nvml.get("library"), "signal": nvml.get("signal")},
        )
    known = next((row for row in knowledge.load("nvml_errors")["errors"] if row["match"] in error), None)
    if known:
        return failed(f"{known['summary']} ({error})", fix=known["fix"], evidence={"error": error})
    if not nvml.get("loaded"):
        return failed(
            f"no NVIDIA driver: {nvml.get('error', 'NVML did not load')}",
            fix=f"Install the NVIDIA driver ({need} for CUDA {recipe.expect.cuda_runtime}), "
            "e.g. `sudo ubuntu-drivers install`, then reboot; or run with --cpu-ok on a CPU-only machine",
            evidence={"error": nvml.get("error"), "timed_out": nvml.get("timed_out", False)},
        )
    if nvml.get("error"):
        return failed(
            f"the NVIDIA driver answers but cannot be queried: {nvml['error']}",
            fix="Check `nvidia-smi`; reload the driver or reboot",
            evidence={"error": nvml["error"]},
        )
    devices = nvml.get("devices", [])
    if not devices:
        return failed(
            f"NVIDIA driver {nvml.get('driver_version')} loaded but it sees no GPU",
            fix="Check `nvidia-smi` and `lspci | grep -i nvidia`; reseat or enable the GPU",
            evidence={"driver_version": nvml.get("driver_version")},
        )
    names = ", ".join(f"{d['name']} (CC {d['compute_capability']})" for d in devices)
    return passed(
        f"driver {nvml.get('driver_version')} sees {len(devices)} GPU(s): {names}",
        evidence={"driver_version": nvml.get("driver_version"), "devices": devices},
    )


def _loading_runtime(cuda_libs: Dict[str, Any], recipe) -> Tuple[Optional[str], str]:
    """The CUDA runtime TensorFlow will load (`11.8`) and how we know: the libcudart the
    loader finds, by its version chain; else the recipe's number."""
    spec = spec_for("cuda_runtime")
    entry = entry_for(cuda_libs, spec["soname"]) if spec else None
    if spec and entry and entry.get("loaded"):
        version, source = reported_version(spec, entry)
        if version:
            v = Version(version)
            return (
                f"{v.major}.{v.minor}",
                f"the runtime that loads: {entry['soname']} at {entry.get('path')}, version from {source}",
            )
    cuda = recipe.expect.cuda_runtime
    return (str(cuda), f"recipe {recipe.name}'s runtime; no libcudart loads here to read") if cuda else (None, "")


@check("gpu.driver", probes=["nvml"], optional_probes=["cuda_libs"], needs=["gpu.nvml"], gpu=True)
def driver_new_enough(facts: FactsView, recipe: Recipe) -> Finding:
    """The driver supports the CUDA runtime that will load (fully, or through minor-version compatibility)."""
    cuda, why = _loading_runtime(facts["cuda_libs"], recipe)
    return judge_driver(facts["nvml"], cuda, why)


def judge_driver(nvml: Dict[str, Any], cuda: Optional[str], why: str) -> Finding:
    """A driver against a CUDA runtime (`why` says where that runtime's version comes from)."""
    found = nvml.get("driver_version")
    table = knowledge.load("cuda_drivers")
    row = table["cuda"].get(cuda) if cuda else None
    if not row:
        what = f"CUDA {cuda} is not in the driver table" if cuda else "no CUDA runtime to judge it against"
        return passed(f"driver {found} ({what})", evidence={"driver_version": found, "cuda_runtime": cuda})
    evidence = {
        "driver_version": found,
        "cuda_runtime": cuda,
        "cuda_runtime_from": why,
        "toolkit_driver": row["toolkit"],
        "minor_compat_driver": row["minor_compat"],
    }
    fix = f"Install NVIDIA driver >= {row['toolkit']} (e.g. `sudo ubuntu-drivers install`), then reboot"
    if Version(str(found)) < Version(row["minor_compat"]):
        return failed(
            f"driver {found} is too old for CUDA {cuda} ({why}): it needs >= {row['toolkit']} "
            f"(>= {row['minor_compat']} with minor-version compatibility)",
            fix=fix,
            evidence=evidence,
        )
    if Version(str(found)) < Version(row["toolkit"]):
        return warned(
            f"driver {found} runs CUDA {cuda} ({why}) only through minor-version compatibility "
            f"(CUDA {cuda} wants >= {row['toolkit']}): {' '.join(table['minor_compat_caveats'].split())}",
            fix=fix,
            evidence=evidence,
        )
    return passed(
        f"driver {found} supports CUDA {cuda} (needs >= {row['toolkit']}; {why}); it offers CUDA "
        f"{nvml.get('cuda_driver_version')}",
        evidence=evidence,
    )


@check("gpu.kernel-module", probes=["kernel", "nvml", "host"], gpu=True)
def kernel_module(facts: FactsView, recipe: Recipe) -> Finding:
    """The nvidia kernel module is loaded (not nouveau), matches the driver library, and /dev/nvidia* is usable."""
    kernel, nvml, host = facts["kernel"], facts["nvml"], facts["host"]
    evidence = {k: kernel.get(k) for k in ("module_version", "modules_loaded", "device_nodes")}
    evidence["wsl_version"] = host.get("wsl_version")
    if kernel.get("nouveau_loaded"):
        return failed(
            "the open-source nouveau driver is loaded; it blocks the NVIDIA driver",
            fix="echo 'blacklist nouveau' | sudo tee /etc/modprobe.d/blacklist-nouveau.conf && "
            "sudo update-initramfs -u && sudo reboot",
            evidence=evidence,
        )
    if host.get("wsl_version") == 1:
        return failed(
            "WSL 1 has no GPU support: CUDA needs WSL 2",
            fix="wsl --set-version <distro> 2   # in PowerShell; `wsl -l -v` lists the distros",
            evidence=evidence,
        )
    if host.get("wsl"):
        if not any(n["path"].endswith("/dxg") for n in kernel.get("device_nodes", [])):
            return failed(
                "WSL2 without /dev/dxg: GPU paravirtualization is off",
                fix="Update Windows' NVIDIA driver and run `wsl --update` in PowerShell",
                evidence=evidence,
            )
        return passed("WSL2: the GPU is reached through /dev/dxg and /usr/lib/wsl/lib", evidence=evidence)
    module, library = kernel.get("module_version"), nvml.get("driver_version")
    if not module:
        return failed(
            "the nvidia kernel module is not loaded (/proc/driver/nvidia/version is missing)",
            fix="sudo modprobe nvidia  # if that fails, reinstall the driver and reboot",
            evidence=evidence,
        )
    if library and module != library:
        return failed(
            f"driver/library version mismatch: kernel module {module}, user-space library {library} "
            "(the driver was upgraded without a reboot)",
            fix="sudo reboot",
            evidence=evidence,
        )
    unusable = [n["path"] for n in kernel.get("device_nodes", []) if not (n["readable"] and n["writable"])]
    if unusable:
        return failed(
            f"no read/write access to {', '.join(unusable)}",
            fix="sudo usermod -aG video $USER  # then log out and in",
            evidence=evidence,
        )
    if not kernel.get("device_nodes"):
        return failed(
            "no /dev/nvidia* device nodes", fix="sudo nvidia-modprobe -u -c=0  # or reboot", evidence=evidence
        )
    return passed(
        f"nvidia kernel module {module} loaded, {len(kernel['device_nodes'])} device nodes usable", evidence=evidence
    )


def visible_gpus(value: str, devices: List[Dict]) -> Tuple[List[str], List[str]]:
    """What CUDA_VISIBLE_DEVICES lets CUDA see (GPU indices, or MIG instance ids), and the
    entry it stopped at: CUDA's own parsing stops at the first bad or repeated entry."""
    uuids = [d.get("uuid") or "" for d in devices]
    seen: List[str] = []
    for item in (x.strip() for x in value.split(",")):
        if item.startswith("MIG-") and item not in seen:  # a MIG instance of some GPU
            seen.append(item)
            continue
        index = next((i for i, u in enumerate(uuids) if u and item.startswith("GPU-") and u.startswith(item)), None)
        if index is None and item.lstrip("-").isdigit() and 0 <= int(item) < len(devices):
            index = int(item)
        if index is None or str(index) in seen:
            return seen, [item]
        seen.append(str(index))
    return seen, []


@check("gpu.visible-devices", probes=["kernel", "nvml"], needs=["gpu.nvml"], gpu=True)
def visible_devices(facts: FactsView, recipe: Recipe) -> Finding:
    """CUDA_VISIBLE_DEVICES does not hide every GPU or name one that does not exist."""
    value = facts["kernel"].get("cuda_visible_devices")
    devices = facts["nvml"].get("devices", [])
    if value is None:
        return passed(f"CUDA_VISIBLE_DEVICES is unset: CUDA sees all {len(devices)} GPU(s)")
    seen, bad = visible_gpus(value, devices)
    evidence = {"CUDA_VISIBLE_DEVICES": value, "visible": seen, "gpus": len(devices)}
    if not seen:
        why = f"names {bad[0]!r}, which is not a GPU here, so it " if bad and bad[0] not in ("", "-1") else ""
        return failed(
            f"CUDA_VISIBLE_DEVICES={value!r} {why}hides every GPU from CUDA and TensorFlow",
            fix="unset CUDA_VISIBLE_DEVICES  # or list the GPUs to use, e.g. export CUDA_VISIBLE_DEVICES=0",
            evidence=evidence,
        )
    if bad:
        return warned(
            f"CUDA_VISIBLE_DEVICES={value!r} names {bad[0]!r}, which is not a GPU here; CUDA stops there "
            f"and sees only {', '.join(seen)}",
            fix=f"export CUDA_VISIBLE_DEVICES={','.join(map(str, range(len(devices))))}",
            evidence=evidence,
        )
    return passed(f"CUDA_VISIBLE_DEVICES={value} shows GPU(s) {', '.join(seen)}", evidence=evidence)


@check("gpu.cuda-driver", probes=["libcuda", "host"], needs=["gpu.nvml", "gpu.visible-devices"], gpu=True)
def cuda_driver_api(facts: FactsView, recipe: Recipe) -> Finding:
    """libcuda.so.1 loads and cuInit succeeds (what TensorFlow's own cuInit will get)."""
    lib, host = facts["libcuda"], facts["host"]
    if not lib.get("loaded"):
        fix = (
            "export LD_LIBRARY_PATH=/usr/lib/wsl/lib:$LD_LIBRARY_PATH"
            if host.get("wsl")
            else "Install the NVIDIA driver (it provides libcuda.so.1), then run `sudo ldconfig`"
        )
        return failed(
            f"libcuda.so.1 cannot be loaded: {lib.get('error')}",
            fix=fix,
            evidence={
                "error": lib.get("error"),
                "timed_out": lib.get("timed_out", False),
                "crashed": lib.get("crashed", False),
            },
        )
    result = lib.get("cu_init")
    evidence = {
        "path": lib.get("path"),
        "cu_init": result,
        "driver_cuda_version": lib.get("driver_cuda_version"),
        "devices": lib.get("devices"),
    }
    if result != "CUDA_SUCCESS":
        hint = {
            "CUDA_ERROR_NO_DEVICE": "check CUDA_VISIBLE_DEVICES and `nvidia-smi`",
            "CUDA_ERROR_UNKNOWN": "often a suspended/resumed machine or a missing nvidia-uvm module: "
            "sudo rmmod nvidia_uvm && sudo modprobe nvidia_uvm",
            "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH": "reboot after the driver upgrade",
            "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE": "remove the cuda-compat package from LD_LIBRARY_PATH",
        }
        return failed(
            f"cuInit failed with {result}",
            fix=hint.get(str(result), "Run `nvidia-smi`; reinstall the driver"),
            evidence=evidence,
        )
    return passed(
        f"cuInit OK: {len(lib.get('devices', []))} CUDA device(s), driver API CUDA {lib.get('driver_cuda_version')}",
        evidence=evidence,
    )


def _arch_support(cc: str, caps: List[str]) -> str:
    """`sass` (a binary-compatible cubin exists), `ptx` (JIT from PTX), or `none`.

    TensorFlow's `compute_XY` target builds both sm_XY SASS and compute_XY PTX
    (cuda_configure.bzl), and SASS runs on any GPU of the same major with a minor >= XY.
    """
    major, minor = (int(x) for x in cc.split("."))
    targets = [(kind, int(arch)) for kind, _, arch in (c.partition("_") for c in caps) if arch.isdigit()]
    if any(a // 10 == major and a % 10 <= minor for _, a in targets):
        return "sass"
    return "ptx" if any(kind == "compute" and a <= major * 10 + minor for kind, a in targets) else "none"


@check("gpu.compute-capability", probes=["nvml", "tf_build"], needs=["gpu.nvml"], gpu=True)
def compute_capability(facts: FactsView, recipe: Recipe) -> Finding:
    """Each GPU's architecture has kernels in the TensorFlow build (SASS), or at least PTX to JIT.

    Whether ptxas (XLA) can compile for it is activation.ptxas's question."""
    build = facts["tf_build"].get("build_info") or {}
    known = knowledge.tensorflow_build(facts["tf_build"].get("version") or recipe.expect.tensorflow)
    caps = build.get("cuda_compute_capabilities") or known["compute_capabilities"]
    oldest = knowledge.min_compute_capability(caps)
    ptx = ", ".join(c for c in caps if c.startswith("compute_")) or "PTX"
    verdicts: Dict[str, List[str]] = {"fail": [], "warn": []}
    for dev in facts["nvml"].get("devices", []):
        cc, label = dev["compute_capability"], f"GPU {dev['index']} {dev['name']} (CC {dev['compute_capability']})"
        support = _arch_support(cc, caps)
        if Version(cc) < Version(oldest):
            verdicts["fail"].append(f"{label} is older than TensorFlow's oldest target {oldest}")
        elif support == "none":
            verdicts["fail"].append(f"{label}: TensorFlow was built with neither kernels nor PTX it can run")
        elif support == "ptx":
            verdicts["warn"].append(
                f"{label}: no kernels built for it, " + knowledge.load("tf_builds")["ptx_jit_note"].format(ptx=ptx)
            )
    evidence = {
        "tensorflow_targets": caps,
        "tensorflow_series": known["series"],
        "devices": [d["compute_capability"] for d in facts["nvml"].get("devices", [])],
    }
    if verdicts["fail"]:
        return failed(
            "; ".join(verdicts["fail"]), fix=f"Use a GPU with compute capability >= {oldest}", evidence=evidence
        )
    if verdicts["warn"]:
        return warned(
            "; ".join(verdicts["warn"]),
            fix="export CUDA_CACHE_MAXSIZE=4294967296  # keep the JIT results",
            evidence=evidence,
        )
    return passed(
        f"TensorFlow has kernels for every GPU here ({', '.join(evidence['devices'])}; built for {', '.join(caps)})",
        evidence=evidence,
    )


@check("gpu.mig", probes=["nvml", "libcuda"], needs=["gpu.nvml"], gpu=True)
def mig_usable(facts: FactsView, recipe: Recipe) -> Finding:
    """A GPU in MIG mode is usable only through a MIG instance that CUDA can see."""
    on = [d for d in facts["nvml"].get("devices", []) if d.get("mig_mode") == 1]
    if not on:
        return passed("no GPU is in MIG mode")
    cuda_devices = facts["libcuda"].get("devices", [])
    names = ", ".join(f"GPU {d['index']} {d['name']}" for d in on)
    if len(cuda_devices) < len(facts["nvml"].get("devices", [])):
        return warned(
            f"MIG is enabled on {names} but CUDA sees no MIG instance there",
            fix="sudo nvidia-smi mig -cgi 9,9 -C  # create instances, or: sudo nvidia-smi -i 0 -mig 0",
            evidence={"mig_devices": [d["index"] for d in on], "cuda_devices": cuda_devices},
        )
    return passed(f"MIG is enabled on {names} and CUDA sees its instances", evidence={"cuda_devices": cuda_devices})


def _holder(p: Dict[str, Any]) -> str:
    """`4242 python (ana)`, or why the process cannot be named."""
    if p.get("name"):
        return f"{p['pid']} {p['name']} ({p.get('user') or 'unknown user'})"
    return f"{p['pid']} ({p['error']})" if p.get("error") else str(p["pid"])


@check("gpu.memory", probes=["nvml"], needs=["gpu.nvml"], gpu=True)
def memory_free(facts: FactsView, recipe: Recipe) -> Finding:
    """No GPU has most of its memory taken by other processes (TensorFlow would start out of memory)."""
    limit = knowledge.load("gpu")["memory_used_warn_fraction"]
    busy = [
        d
        for d in facts["nvml"].get("devices", [])
        if d["memory_total_bytes"] and d["memory_used_bytes"] / d["memory_total_bytes"] > limit
    ]
    if busy:
        d = busy[0]
        procs = sorted(d.get("processes", []), key=lambda p: -(p.get("used_memory_bytes") or 0))
        holders = ", ".join(_holder(p) for p in procs) or "processes NVML does not list"
        top = procs[0] if procs else {}
        command = f"; {top['pid']} runs: {top['cmdline']}" if top.get("cmdline") else ""
        return warned(
            f"GPU {d['index']} {d['name']} has {d['memory_used_bytes'] / 2**30:.1f} of "
            f"{d['memory_total_bytes'] / 2**30:.1f} GiB in use by {holders}{command}",
            fix="nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv  # stop what "
            "is yours, or train on a free GPU with CUDA_VISIBLE_DEVICES",
            evidence={
                "busy": [
                    {k: x.get(k) for k in ("index", "memory_used_bytes", "memory_total_bytes", "processes")}
                    for x in busy
                ]
            },
        )
    return passed("GPU memory is free for training")


@check("gpu.health", probes=["nvml"], needs=["gpu.nvml"], gpu=True)
def gpu_health(facts: FactsView, recipe: Recipe) -> Finding:
    """No GPU reports uncorrected ECC errors or retired memory pages."""
    sick = [
        d
        for d in facts["nvml"].get("devices", [])
        if (d.get("ecc_uncorrected_total") or 0) > 0 or (d.get("retired_pages_double_bit") or 0) > 0
    ]
    if sick:
        d = sick[0]
        return warned(
            f"GPU {d['index']} {d['name']} reports {d.get('ecc_uncorrected_total') or 0} uncorrected ECC "
            f"errors and {d.get('retired_pages_double_bit') or 0} retired pages",
            fix="nvidia-smi -q -d ECC,PAGE_RETIREMENT  # reset with a reboot; replace the GPU if it grows",
            evidence={"devices": [d["index"] for d in sick]},
        )
    return passed("no ECC errors or retired pages reported")
