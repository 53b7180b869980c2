"""Probes: the only code that touches the OS, the GPU, subprocesses and TensorFlow.

Each probe is a function `probe(ctx) -> dict` of plain JSON data. A probe never
raises: the runner records any exception as `{"error": ...}`. Probes that can hang
or crash the process (NVML on a wedged driver, loading CUDA libraries, importing
TensorFlow, training) are `isolated`: they run in a child process with a timeout.
"""
from __future__ import annotations

import copy
import importlib
import os
import threading
import time
import traceback
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, List, Optional


@dataclass
class ProbeContext:
    """What a probe may know beyond the machine itself; serializable for child processes."""

    recipe_path: Optional[str] = None
    timeout: float = 30.0
    env: Dict[str, str] = field(default_factory=lambda: dict(os.environ))
    options: Dict[str, Any] = field(default_factory=dict)
    #: Where /proc, /dev, /usr/local/cuda* and /usr/lib/wsl are read from. "/" on a real
    #: machine; the tests' simulated GPU trees set MERLIN_DOCTOR_SYSROOT to their own root.
    root: str = field(default_factory=lambda: os.environ.get("MERLIN_DOCTOR_SYSROOT", "/"))
    #: Where slow probes report progress as it happens (not serialized: children get none).
    progress: Optional[Callable[[Dict[str, Any]], None]] = field(default=None, repr=False, compare=False)

    def host_path(self, path: str) -> str:
        """`/proc/modules` under the context's root."""
        return os.path.join(self.root, path.lstrip("/"))

    def to_dict(self) -> Dict[str, Any]:
        """Everything a child process needs (the progress callback stays in this process)."""
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if f.name != "progress"}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ProbeContext":
        return cls(**data)

    def recipe(self):  # -> Recipe; imported lazily to keep child start-up small
        from merlin_doctor.recipe import load_recipe

        return load_recipe(self.recipe_path)


@dataclass(frozen=True)
class Probe:
    name: str
    target: str  # "module:function"
    description: str
    isolated: bool = False
    slow: bool = False  # imports TensorFlow or trains: left out by --fast

    def function(self) -> Callable[[ProbeContext], Dict[str, Any]]:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


PROBES: List[Probe] = [
    Probe("host", "merlin_doctor.probes.host:probe", "OS, glibc, kernel, CPU, memory, disk, container/WSL2"),
    Probe("interpreter", "merlin_doctor.probes.interpreter:probe", "the running Python and which env it belongs to"),
    Probe("packages", "merlin_doctor.probes.packages:probe", "installed Python distributions (no imports)"),
    Probe("activation", "merlin_doctor.probes.activation:probe", "conda activate.d/deactivate.d scripts and the live variables"),
    Probe("recipe_files", "merlin_doctor.probes.recipe_files:probe", "the recipe's links and copies inside the env"),
    Probe("nvml", "merlin_doctor.probes.nvml:probe", "NVIDIA driver and GPUs through NVML", isolated=True),
    Probe("kernel", "merlin_doctor.probes.kernel:probe", "the NVIDIA kernel module, /dev/nvidia*, nouveau, WSL2, CUDA_VISIBLE_DEVICES"),
    Probe("libcuda", "merlin_doctor.probes.libcuda:probe", "the CUDA driver API (libcuda.so.1): cuInit and the devices it sees", isolated=True),
    Probe("cuda_libs", "merlin_doctor.probes.cuda_libs:probe", "every CUDA library TensorFlow loads: path, real file, version, owner, other copies", isolated=True),
    Probe("tf_build", "merlin_doctor.probes.tf_build:probe", "what the installed TensorFlow was built against (read, not imported)"),
    Probe("tensorflow", "merlin_doctor.probes.tensorflow:probe",
          "importing TensorFlow: devices, matmul/cuDNN/XLA per device, TF-TRT, Merlin imports", slow=True),
    Probe("e2e", "merlin_doctor.probes.tensorflow:e2e_probe", "training the reference PLE model", slow=True),
    Probe("container_host", "merlin_doctor.probes.container_host:probe",
          "docker, its NVIDIA runtime, the NVIDIA Container Toolkit and the disk for the image (host side)"),
]


def probe_named(name: str) -> Probe:
    for p in PROBES:
        if p.name == name:
            return p
    raise KeyError(name)


def run_probe(probe: Probe, ctx: ProbeContext) -> Dict[str, Any]:
    """Collect one probe's facts, never raising; isolated probes go to a child process."""
    return run_probes([probe], ctx)[probe.name]


def run_probes(probes: List[Probe], ctx: ProbeContext) -> Dict[str, Dict[str, Any]]:
    """Collect several probes' facts, never raising.

    In-process probes run here. Isolated probes that need the same child environment
    share one child process, which forks once per probe (so a hang or a crash is still
    blamed on one probe) and pays Python's start-up once; a slow probe gets a child of
    its own. The children run in parallel.
    """
    results: Dict[str, Dict[str, Any]] = {}
    groups: Dict[tuple, List[Probe]] = {}
    for probe in probes:
        if not probe.isolated:
            started = time.perf_counter()
            results[probe.name] = call_probe(probe, ctx)
            results[probe.name].setdefault("duration_s", round(time.perf_counter() - started, 4))
            continue
        env = child_env(probe, ctx)
        key = (probe.name,) if probe.slow else tuple(sorted(env.items()))
        groups.setdefault(key, []).append(probe)
    if groups:
        from merlin_doctor.probes.isolate import run_in_child

        def run_group(group: List[Probe]) -> None:
            try:
                results.update(run_in_child([p.name for p in group], ctx, env=child_env(group[0], ctx)))
            except Exception as exc:  # a bug here is data too, never a dead doctor
                results.update({p.name: {"error": f"{type(exc).__name__}: {exc}"} for p in group})

        threads = [threading.Thread(target=run_group, args=(g,), daemon=True) for g in groups.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return {p.name: results[p.name] for p in probes}


def child_env(probe: Probe, ctx: ProbeContext) -> Dict[str, str]:
    """The environment an isolated probe's child starts with.

    A probe module may define `child_env(ctx)`: the loader reads LD_LIBRARY_PATH only when
    a process starts, so a probe that must load libraries with the search path the
    activated env will have says so here.
    """
    module = importlib.import_module(probe.target.partition(":")[0])
    hook = getattr(module, "child_env", None)
    return hook(ctx) if hook else ctx.env


def call_probe(probe: Probe, ctx: ProbeContext) -> Dict[str, Any]:
    try:
        result = probe.function()(ctx)
    except Exception as exc:  # a probe bug is data, not a dead doctor
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=5)}
    return result if isinstance(result, dict) else {"error": f"probe returned {type(result).__name__}, not a dict"}
