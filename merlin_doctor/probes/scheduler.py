"""Where each probe runs, and when: the one place that decides it.

The policy, in order of preference (cheapest that is safe):

1. **In this process**: probes that only read files and metadata (`isolated=False`).
2. **A fork of this process**: isolated probes that are not slow and whose child
   environment is this process's own. Nothing is imported again and the loader state is
   ours, so libraries resolve exactly as they would here. Forking is safe only while this
   process runs a single thread (a lock held by another thread stays locked in the fork),
   so `start_isolated` forks only then and asserts it in `_fork_group`.
3. **A child interpreter** (`python -m merlin_doctor.probes.child`): isolated probes whose
   environment differs (the loader reads LD_LIBRARY_PATH only when a process starts, so
   libraries must be loaded with the activated env's path in a fresh process), or any
   isolated probe once another thread runs. Probes that need the same environment share
   one child, in which each runs in a fork of its own, so a hang or a crash is still
   blamed on one probe.
4. **A child interpreter of its own**: slow probes (TensorFlow, training).

Which interpreter: the doctor's own, except for probes that read the judged env's Python
(`in_env`: interpreter, packages, tf_build, tensorflow, e2e) when the doctor judges
another env (`check --prefix/--name`, `ctx.python`). Those run with that env's
interpreter and its activated environment: the fast ones share one child of it (rule 3),
the slow ones start theirs with `env_python(ctx)`. The child imports only the doctor's
package (isolate.run_json_command puts it, alone, on PYTHONPATH) and the standard
library; what else the env's Python lacks is reported as the probe's error.

Every isolated probe gets `ctx.timeout` seconds; a hang or a crash becomes its facts.

Prefetch order (`early_batch`, then what the checks read): the isolated GPU probes are
the long pole of a run, so they start first, before the checks are even imported, while the process is still single
threaded and can fork; then every other probe the selected checks read. The waiting for
started probes happens in threads, which is why the first batch is the one that forks.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple

from merlin_doctor.probes.context import ProbeContext
from merlin_doctor.probes.registry import PROBES, Probe

Results = Dict[str, Dict[str, Any]]
Waiter = Callable[[], Results]


def early_batch() -> List[str]:
    """The probes to start before anything else is imported: the isolated GPU probes, the
    long pole of a run, while this process is single-threaded and may fork."""
    return [p.name for p in PROBES if p.isolated and not p.slow]


def env_python(ctx: ProbeContext) -> str:
    """The interpreter of the env judged: the one that probes reading the env's Python run with."""
    return ctx.python or sys.executable


def child_python(probe: Probe, ctx: ProbeContext) -> Optional[str]:
    """Another env's interpreter for a probe that reads that env's Python; None: this one."""
    return ctx.python if probe.in_env and ctx.python else None


def runs_isolated(probe: Probe, ctx: ProbeContext) -> bool:
    """Isolated probes, and fast probes that read another env's Python (they run in its interpreter)."""
    return probe.isolated or (child_python(probe, ctx) is not None and not probe.slow)


def run_probe(probe: Probe, ctx: ProbeContext) -> Dict[str, Any]:
    """Collect one probe's facts, never raising; isolated probes go to a child process."""
    return run_probes([probe], ctx)[probe.name]


def run_probes(probes: List[Probe], ctx: ProbeContext) -> Results:
    """Collect several probes' facts, never raising; in-process probes run here."""
    isolated = [p for p in probes if runs_isolated(p, ctx)]
    wait: Waiter = start_isolated(isolated, ctx) if isolated else dict
    results: Results = {}
    for probe in probes:
        if probe not in isolated:
            started = time.perf_counter()
            results[probe.name] = call_probe(probe, ctx)
            results[probe.name].setdefault("duration_s", round(time.perf_counter() - started, 4))
    results.update(wait())
    return {p.name: results[p.name] for p in probes}


Group = Tuple[List[Probe], Dict[str, str], Optional[str]]


def _groups(probes: List[Probe], ctx: ProbeContext) -> List[Group]:
    """Probes that can share a child: the same interpreter and environment (a slow probe always alone)."""
    groups: Dict[tuple, Group] = {}
    for probe in probes:
        env, python = child_env(probe, ctx), child_python(probe, ctx)
        key = (probe.name,) if probe.slow else (python, tuple(sorted(env.items())))
        groups.setdefault(key, ([], env, python))[0].append(probe)
    return list(groups.values())


def _can_fork(group: List[Probe], env: Dict[str, str], python: Optional[str]) -> bool:
    """Rule 2 of the policy: this interpreter, same environment, not slow, and this process single-threaded."""
    return python is None and env == dict(os.environ) and not group[0].slow and threading.active_count() == 1


def _fork_group(group: List[Probe], context: ProbeContext, timeout: float) -> Waiter:
    from merlin_doctor.probes.isolate import per_probe, start_fork

    assert threading.active_count() == 1, "forking with other threads running can deadlock the fork"
    names = [p.name for p in group]
    forked = start_fork(lambda: collect_each(group, context), quiet=True)
    return lambda: per_probe(forked.wait(timeout * len(names) + 10), names)


def start_isolated(probes: List[Probe], ctx: ProbeContext) -> Waiter:
    """Start isolated probes now (forks and children are started before this returns, while
    no waiting thread exists yet); the function returned waits for their facts."""
    from merlin_doctor.probes.isolate import run_in_child

    started: List[Tuple[Waiter, List[str]]] = []
    for group, env, python in _groups(probes, ctx):
        context, names = child_context(group, ctx), [p.name for p in group]
        if _can_fork(group, env, python):
            started.append((_fork_group(group, context, ctx.timeout), names))
        else:
            started.append((functools.partial(run_in_child, names, context, env=env, python=python), names))

    def wait() -> Results:
        results: Results = {}

        def collect(waiter: Waiter, names: List[str]) -> None:
            try:
                results.update(waiter())
            except Exception as exc:  # a bug here is data too, never a dead doctor
                results.update({n: {"error": f"{type(exc).__name__}: {exc}"} for n in names})

        threads = [threading.Thread(target=collect, args=pair, daemon=True) for pair in started]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    return wait


def collect_each(probes: List[Probe], ctx: ProbeContext) -> Results:
    """Each probe in a fork of its own with the context's timeout (inside a child process)."""
    from merlin_doctor.probes.isolate import call_in_fork

    results = {}
    for probe in probes:
        with contextlib.suppress(Exception):  # one that cannot import says so from its fork (call_probe)
            probe.function()  # import the module before forking: each fork then starts warm
        started = time.perf_counter()
        results[probe.name] = call_in_fork(functools.partial(call_probe, probe, ctx), ctx.timeout)
        results[probe.name]["duration_s"] = round(time.perf_counter() - started, 4)
    return results


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
    return ProbeContext(
        recipe_path=ctx.recipe_path,
        timeout=ctx.timeout,
        env=ctx.env,
        options=options,
        root=ctx.root,
        prefix=ctx.prefix,
        python=ctx.python,
    )


def call_probe(probe: Probe, ctx: ProbeContext) -> Dict[str, Any]:
    try:
        result = probe.function()(ctx)
    except ImportError as exc:  # in another env's Python, a module the doctor's probe needs may be missing
        return {
            "error": f"{sys.executable} cannot import {exc.name or exc}, which the {probe.name} probe needs: "
            f"{sys.executable} -m pip install {exc.name or '...'}"
        }
    except Exception as exc:  # a probe bug is data, not a dead doctor
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=5)}
    return result if isinstance(result, dict) else {"error": f"probe returned {type(result).__name__}, not a dict"}
