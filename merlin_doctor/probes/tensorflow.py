"""TensorFlow itself and the reference PLE training, each in a child process of its own.

These probes run in-process but only to start and watch their child (`probes/tf_child.py`,
`e2e/ple.py`) under the judged env's Python (`scheduler.env_python`): the child is the isolation, with its own
timeout, its progress streamed to `ctx.progress`, and TensorFlow's log kept as evidence.
"""

from __future__ import annotations

from typing import Any, Dict, List

from merlin_doctor.probes.child_io import STEP_PREFIX
from merlin_doctor.probes.context import ProbeContext
from merlin_doctor.probes.isolate import run_json_command
from merlin_doctor.probes.scheduler import env_python

#: Importing TensorFlow alone takes 5-15 s on a small CPU; the tests run in a few more.
TENSORFLOW_TIMEOUT_S = 180


def _timeout(ctx: ProbeContext, floor: float) -> float:
    return max(ctx.timeout, float(ctx.options.get("slow_timeout") or floor))


def with_steps(result: Dict[str, Any]) -> Dict[str, Any]:
    """The child's log without its step markers, and `steps`: each step's [first, end) range
    of log lines, in the order they ran. A child that died leaves its last step open: the
    step it died in."""
    log: List[str] = []
    steps: List[Dict[str, Any]] = []
    for line in result.get("log") or []:
        if line.startswith(STEP_PREFIX):
            if steps:
                steps[-1]["end"] = len(log)
            steps.append({"step": line[len(STEP_PREFIX) :].strip(), "start": len(log), "end": None})
        else:
            log.append(line)
    if steps and steps[-1]["end"] is None:
        steps[-1]["end"] = len(log)
    result["log"] = log
    result["steps"] = [s for s in steps if s["step"] != "end"]
    return result


def probe(ctx: ProbeContext) -> Dict[str, Any]:
    cmd = [env_python(ctx), "-m", "merlin_doctor.probes.tf_child", "--progress"]
    return with_steps(run_json_command(cmd, _timeout(ctx, TENSORFLOW_TIMEOUT_S), env=ctx.env, on_progress=ctx.progress))


def e2e_probe(ctx: ProbeContext) -> Dict[str, Any]:
    from merlin_doctor.e2e import load_spec, ple_command

    size = ctx.options.get("e2e_size", "quick")
    spec = load_spec()["sizes"][size]
    cmd = ple_command(env_python(ctx), size=size, device=ctx.options.get("device", "auto"))
    result = run_json_command(cmd, _timeout(ctx, spec["timeout_s"]), env=ctx.env, on_progress=ctx.progress)
    result.setdefault("size", size)
    return result
