"""Probes: the only code that touches the OS, the GPU, subprocesses and TensorFlow.

Each probe is a function `probe(ctx) -> dict` of plain JSON data. A probe never
raises: the runner records any exception as `{"error": ...}`. Probes that can hang
or crash the process (NVML on a wedged driver, loading CUDA libraries, importing
TensorFlow, training) are `isolated`: they run in a child process with a timeout.
"""
from __future__ import annotations

import copy
import functools
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
        return _recipe_at(self.recipe_path)


@functools.lru_cache(maxsize=8)
def _recipe_at(path: Optional[str]):
    """Probes ask for the recipe several times a run; parse each file once."""
    from merlin_doctor.recipe import load_recipe

    return load_recipe(path)


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
    """Collect several probes' facts, never raising; in-process probes run here."""
    isolated = [p for p in probes if p.isolated]
    wait = start_isolated(isolated, ctx) if isolated else dict
    results: Dict[str, Dict[str, Any]] = {}
    for probe in probes:
        if not probe.isolated:
            started = time.perf_counter()
            results[probe.name] = call_probe(probe, ctx)
            results[probe.name].setdefault("duration_s", round(time.perf_counter() - started, 4))
    results.update(wait())
    return {p.name: results[p.name] for p in probes}


def start_isolated(probes: List[Probe], ctx: ProbeContext) -> Callable[[], Dict[str, Dict[str, Any]]]:
    """Start isolated probes now; the function returned waits for their facts.

    Probes that need the same child environment share one child, in which each probe
    runs in a fork of its own (a hang or a crash is still blamed on one probe). A group
    whose environment is this process's own, started while no other thread runs, forks
    this very process: no second interpreter to start, which was most of `check --fast`.
    Any other group gets a fresh interpreter, since the loader reads LD_LIBRARY_PATH only
    when a process starts; a slow probe gets a child of its own.
    """
    from merlin_doctor.probes.isolate import run_in_child, start_fork

    groups: Dict[tuple, List[Probe]] = {}
    for probe in probes:
        env = child_env(probe, ctx)
        groups.setdefault((probe.name,) if probe.slow else tuple(sorted(env.items())), []).append(probe)
    waiters: List[Callable[[], Dict[str, Dict[str, Any]]]] = []
    for group in groups.values():
        env, context, names = child_env(group[0], ctx), child_context(group, ctx), [p.name for p in group]
        if env == dict(os.environ) and threading.active_count() == 1 and not group[0].slow:
            forked = start_fork(lambda: collect_each(group, context), quiet=True)
            waiters.append(lambda forked=forked, names=names: _per_probe(forked.wait(ctx.timeout * len(names) + 10), names))
        else:
            waiters.append(lambda env=env, context=context, names=names: run_in_child(names, context, env=env))

    def wait() -> Dict[str, Dict[str, Any]]:
        results: Dict[str, Dict[str, Any]] = {}

        def collect(waiter: Callable[[], Dict[str, Dict[str, Any]]], names: List[str]) -> None:
            try:
                results.update(waiter())
            except Exception as exc:  # a bug here is data too, never a dead doctor
                results.update({n: {"error": f"{type(exc).__name__}: {exc}"} for n in names})

        threads = [threading.Thread(target=collect, args=(w, [p.name for p in g]), daemon=True)
                   for w, g in zip(waiters, groups.values())]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    return wait


def collect_each(probes: List[Probe], ctx: ProbeContext) -> Dict[str, Dict[str, Any]]:
    """Each probe in a fork of its own with the context's timeout (inside a child process)."""
    from merlin_doctor.probes.isolate import call_in_fork

    results = {}
    for probe in probes:
        probe.function()  # import the module before forking: each fork then starts warm
        started = time.perf_counter()
        results[probe.name] = call_in_fork(lambda probe=probe: call_probe(probe, ctx), ctx.timeout)
        results[probe.name]["duration_s"] = round(time.perf_counter() - started, 4)
    return results


def _per_probe(out: Dict[str, Any], names: List[str]) -> Dict[str, Dict[str, Any]]:
    """A child's results by probe; when the child itself failed, that failure for each of them."""
    if all(isinstance(out.get(n), dict) for n in names):
        return {n: out[n] for n in names}
    return {n: dict(out) for n in names}


def child_env(probe: Probe, ctx: ProbeContext) -> Dict[str, str]:
    """The environment an isolated probe's child starts with.

    A probe module may define `child_env(ctx)`: the loader reads LD_LIBRARY_PATH only when
    a process starts, so a probe that must load libraries with the search path the
    activated env will have says so here.
    """
    module = importlib.import_module(probe.target.partition(":")[0])
    hook = getattr(module, "child_env", None)
    return hook(ctx) if hook else ctx.env


def child_context(probes: List[Probe], ctx: ProbeContext) -> ProbeContext:
    """The context sent to a child, with what each probe's `child_options(ctx)` hook prepares.

    Work the parent has done anyway (recipe, knowledge tables) is handed over as data, so
    the child need not import YAML or parse the recipe again: it starts fast.
    """
    options = dict(ctx.options)
    for probe in probes:
        hook = getattr(importlib.import_module(probe.target.partition(":")[0]), "child_options", None)
        if hook:
            options[probe.name] = hook(ctx)
    return ProbeContext(recipe_path=ctx.recipe_path, timeout=ctx.timeout, env=ctx.env, options=options, root=ctx.root)


def call_probe(probe: Probe, ctx: ProbeContext) -> Dict[str, Any]:
    try:
        result = probe.function()(ctx)
    except Exception as exc:  # a probe bug is data, not a dead doctor
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=5)}
    return result if isinstance(result, dict) else {"error": f"probe returned {type(result).__name__}, not a dict"}
