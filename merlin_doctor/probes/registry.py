"""The probes: name, code, what they gather, and whether they must run isolated or are slow.

Each probe is a function `probe(ctx) -> dict` of plain JSON data. A probe never raises:
the scheduler records any exception as `{"error": ...}`. Probes that can hang or crash the
process (NVML on a wedged driver, loading CUDA libraries, importing TensorFlow, training)
are `isolated`: they run in a child process with a timeout (probes/scheduler.py).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, List

from merlin_doctor.probes.context import ProbeContext


@dataclass(frozen=True)
class Probe:
    name: str
    target: str  # "module:function"
    description: str
    isolated: bool = False
    slow: bool = False  # imports TensorFlow or trains: left out by --fast
    #: Reads the judged env's Python (its sys.path, version, TensorFlow): runs with that
    #: env's interpreter when the doctor judges another env (probes/scheduler.py).
    in_env: bool = False

    def function(self) -> Callable[[ProbeContext], Dict[str, Any]]:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


PROBES: List[Probe] = [
    Probe("host", "merlin_doctor.probes.host:probe", "OS, glibc, kernel, CPU, memory, disk, container/WSL2"),
    Probe(
        "interpreter",
        "merlin_doctor.probes.interpreter:probe",
        "the env's Python and which env it belongs to",
        in_env=True,
    ),
    Probe(
        "packages", "merlin_doctor.probes.packages:probe", "installed Python distributions (no imports)", in_env=True
    ),
    Probe(
        "activation",
        "merlin_doctor.probes.activation:probe",
        "conda activate.d/deactivate.d scripts and the live variables",
    ),
    Probe("recipe_files", "merlin_doctor.probes.recipe_files:probe", "the recipe's links and copies inside the env"),
    Probe("nvml", "merlin_doctor.probes.nvml:probe", "NVIDIA driver and GPUs through NVML", isolated=True),
    Probe(
        "kernel",
        "merlin_doctor.probes.kernel:probe",
        "the NVIDIA kernel module, /dev/nvidia*, nouveau, WSL2, CUDA_VISIBLE_DEVICES",
    ),
    Probe(
        "libcuda",
        "merlin_doctor.probes.libcuda:probe",
        "the CUDA driver API (libcuda.so.1): cuInit and the devices it sees",
        isolated=True,
    ),
    Probe(
        "cuda_libs",
        "merlin_doctor.probes.cuda_libs:probe",
        "every CUDA library TensorFlow loads: path, real file, version, owner, other copies",
        isolated=True,
    ),
    Probe(
        "tf_build",
        "merlin_doctor.probes.tf_build:probe",
        "what the installed TensorFlow was built against (read, not imported)",
        in_env=True,
    ),
    Probe(
        "tensorflow",
        "merlin_doctor.probes.tensorflow:probe",
        "importing TensorFlow: devices, matmul/cuDNN/XLA per device, TF-TRT, Merlin imports",
        slow=True,
        in_env=True,
    ),
    Probe(
        "e2e", "merlin_doctor.probes.tensorflow:e2e_probe", "training the reference PLE model", slow=True, in_env=True
    ),
    Probe(
        "container_host",
        "merlin_doctor.probes.container_host:probe",
        "docker, its NVIDIA runtime, the NVIDIA Container Toolkit and the disk for the image (host side)",
    ),
]


def probe_named(name: str) -> Probe:
    for p in PROBES:
        if p.name == name:
            return p
    raise KeyError(name)
