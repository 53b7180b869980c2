"""TensorFlow itself and the reference PLE training, each in a child process of its own.

These probes run in-process but only to start and watch their child (`probes/tf_child.py`,
`e2e/ple.py`) under this environment's Python: the child is the isolation, with its own
timeout, its progress streamed to `ctx.progress`, and TensorFlow's log kept as evidence.
"""
from __future__ import annotations

import sys
from typing import Any, Dict

from merlin_doctor.probes.context import ProbeContext
from merlin_doctor.probes.isolate import run_json_command

#: Importing TensorFlow alone takes 5-15 s on a small CPU; the tests run in a few more.
TENSORFLOW_TIMEOUT_S = 180


def _timeout(ctx: ProbeContext, floor: float) -> float:
    return max(ctx.timeout, float(ctx.options.get("slow_timeout") or floor))


def probe(ctx: ProbeContext) -> Dict[str, Any]:
    cmd = [sys.executable, "-m", "merlin_doctor.probes.tf_child", "--progress"]
    return run_json_command(cmd, _timeout(ctx, TENSORFLOW_TIMEOUT_S), env=ctx.env, on_progress=ctx.progress)


def e2e_probe(ctx: ProbeContext) -> Dict[str, Any]:
    from merlin_doctor.e2e import load_spec, ple_command

    size = ctx.options.get("e2e_size", "quick")
    spec = load_spec()["sizes"][size]
    cmd = ple_command(sys.executable, size=size, device=ctx.options.get("device", "auto"))
    result = run_json_command(cmd, _timeout(ctx, spec["timeout_s"]), env=ctx.env, on_progress=ctx.progress)
    result.setdefault("size", size)
    return result
