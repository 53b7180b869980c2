"""Probes: the only code that touches the OS, the GPU, subprocesses and TensorFlow.

Each probe is a function `probe(ctx) -> dict` of plain JSON data. A probe never
raises: the runner records any exception as `{"error": ...}`. Probes that can hang
or crash the process (NVML on a wedged driver, loading CUDA libraries, importing
TensorFlow, training) are `isolated`: they run in a child process with a timeout.
"""
from __future__ import annotations

import importlib
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional


@dataclass
class ProbeContext:
    """What a probe may know beyond the machine itself; serializable for child processes."""

    recipe_path: Optional[str] = None
    timeout: float = 30.0
    env: Dict[str, str] = field(default_factory=lambda: dict(os.environ))
    options: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

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
    Probe("nvml", "merlin_doctor.probes.nvml:probe", "NVIDIA driver and GPUs through NVML", isolated=True),
]


def probe_named(name: str) -> Probe:
    for p in PROBES:
        if p.name == name:
            return p
    raise KeyError(name)


def run_probe(probe: Probe, ctx: ProbeContext) -> Dict[str, Any]:
    """Collect one probe's facts, never raising; isolated probes go to a child process."""
    started = time.perf_counter()
    if probe.isolated:
        from merlin_doctor.probes.isolate import run_in_child

        result = run_in_child(probe.name, ctx)
    else:
        result = call_probe(probe, ctx)
    result.setdefault("duration_s", round(time.perf_counter() - started, 4))
    return result


def call_probe(probe: Probe, ctx: ProbeContext) -> Dict[str, Any]:
    try:
        result = probe.function()(ctx)
    except Exception as exc:  # a probe bug is data, not a dead doctor
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=5)}
    return result if isinstance(result, dict) else {"error": f"probe returned {type(result).__name__}, not a dict"}
