"""GPU checks. This module holds the basic one: the driver answers and sees a GPU."""
from __future__ import annotations

from merlin_doctor import knowledge
from merlin_doctor.checks import check
from merlin_doctor.verdict import Finding, failed, passed


def driver_requirement(recipe) -> str:
    """`>= 460.27.03` for the recipe's CUDA runtime, from the knowledge table."""
    cuda = recipe.expect.get("cuda_runtime")
    row = knowledge.load("cuda_drivers")["cuda"].get(str(cuda)) if cuda else None
    return f">= {row['toolkit']}" if row else "a current NVIDIA driver"


@check("gpu.nvml", probes=["nvml"], gpu=True)
def nvml_sees_gpu(facts, recipe) -> Finding:
    """The NVIDIA driver's NVML library loads and sees at least one GPU."""
    nvml = facts["nvml"]
    need = driver_requirement(recipe)
    if not nvml.get("loaded"):
        return failed(f"no NVIDIA driver: {nvml.get('error', 'NVML did not load')}",
                      fix=f"Install the NVIDIA driver ({need} for CUDA {recipe.expect.get('cuda_runtime')}), "
                          "e.g. `sudo ubuntu-drivers install`, then reboot; or run with --cpu-ok on a CPU-only machine",
                      error=nvml.get("error"), timed_out=nvml.get("timed_out", False))
    if nvml.get("error"):
        return failed(f"the NVIDIA driver answers but cannot be queried: {nvml['error']}",
                      fix="Check `nvidia-smi`; reload the driver or reboot", error=nvml["error"])
    devices = nvml.get("devices", [])
    if not devices:
        return failed(f"NVIDIA driver {nvml.get('driver_version')} loaded but it sees no GPU",
                      fix="Check `nvidia-smi` and `lspci | grep -i nvidia`; reseat or enable the GPU",
                      driver_version=nvml.get("driver_version"))
    names = ", ".join(f"{d['name']} (CC {d['compute_capability']})" for d in devices)
    return passed(f"driver {nvml.get('driver_version')} sees {len(devices)} GPU(s): {names}",
                  driver_version=nvml.get("driver_version"), devices=devices)
