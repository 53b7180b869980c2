"""Run probes in child processes with timeouts, so a hang or a crash becomes data."""

from __future__ import annotations

import atexit
import faulthandler
import functools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from merlin_doctor.probes.context import ProbeContext

#: Lines a child writes to stderr that start with this are progress, not log text.
PROGRESS_PREFIX = "PROGRESS "


def run_in_child(
    names: List[str], ctx: ProbeContext, env: Optional[Dict[str, str]] = None, python: Optional[str] = None
) -> Dict[str, Dict[str, Any]]:
    """`python -m merlin_doctor.probes.child NAME...` with the context on stdin: each probe's facts.

    The child gives each probe `ctx.timeout` seconds (in a fork of its own); if the child
    itself dies or overruns, every probe it held gets that failure as its facts.
    """
    cmd = [python or sys.executable, "-m", "merlin_doctor.probes.child", *names]
    out = run_json_command(cmd, ctx.timeout * len(names) + 10, stdin=json.dumps(ctx.to_dict()), env=env or ctx.env)
    results = out.get("results")
    return per_probe(results if isinstance(results, dict) else out, names)


def per_probe(out: Dict[str, Any], names: List[str]) -> Dict[str, Dict[str, Any]]:
    """A child's results by probe; when the child itself failed, that failure for each of them."""
    if all(isinstance(out.get(n), dict) for n in names):
        return {n: out[n] for n in names}
    return {n: dict(out) for n in names}


class Forked:
    """A function running in a forked process; `wait` collects the JSON it returns."""

    def __init__(self, pid: int, read_end: int):
        self.pid, self.read_end = pid, read_end

    def wait(self, timeout: float) -> Dict[str, Any]:
        """Its result, or why there is none (timed out and killed, crashed, no output)."""
        chunks: List[bytes] = []
        deadline = time.monotonic() + timeout
        finished = True
        while True:
            ready, _, _ = select.select([self.read_end], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                finished = False
                break
            data = os.read(self.read_end, 65536)
            if not data:
                break
            chunks.append(data)
        os.close(self.read_end)
        if not finished:
            os.kill(self.pid, signal.SIGKILL)
        _, status = os.waitpid(self.pid, 0)
        if not finished:
            return {"error": f"timed out after {timeout:g} s (the child was killed)", "timed_out": True}
        if os.WIFSIGNALED(status):
            sig = signal.Signals(os.WTERMSIG(status)).name
            return {"error": f"the child process was killed by {sig}", "crashed": True, "signal": sig}
        try:
            return json.loads(b"".join(chunks).decode())
        except ValueError:
            return {"error": "the child process exited without a result"}


def start_fork(function: Callable[[], Dict[str, Any]], quiet: bool = False) -> Forked:
    """Start `function()` in a forked process: a crash or a hang there becomes data here.

    Cheaper than a new interpreter (nothing is imported again), and the loader state is
    the parent's, so libraries resolve exactly as they would in this process. `quiet`
    sends the fork's stdout and stderr to /dev/null, so a library that prints cannot mix
    into this process's own output.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the fork: compute, report, leave without running any Python clean-up
        os.close(read_end)
        faulthandler.disable()  # a crash here is the expected outcome, reported by the parent
        try:
            if quiet:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.dup2(null, 2)
            try:
                data = json.dumps(function(), default=str).encode()
            except BaseException as exc:  # noqa: BLE001 - everything becomes data
                data = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view) :]
        finally:
            os._exit(0)
    os.close(write_end)
    return Forked(pid, read_end)


def call_in_fork(function: Callable[[], Dict[str, Any]], timeout: float) -> Dict[str, Any]:
    """`function()` in a forked process, waited for at most `timeout` seconds."""
    return start_fork(function).wait(timeout)


@functools.lru_cache(maxsize=1)
def package_root() -> str:
    """A directory holding merlin_doctor and nothing else, for a child's PYTHONPATH.

    The doctor's own directory on sys.path (a site-packages, say) also holds its
    dependencies, built for the doctor's Python: put first on another env's path they
    would shadow that env's own packages (and be listed as its packages). So the child
    gets a private directory with one link, to this package; removed when the doctor exits.
    """
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        root = tempfile.mkdtemp(prefix="merlin-doctor-path-")
        os.symlink(package, os.path.join(root, "merlin_doctor"))
    except OSError:
        return os.path.dirname(package)  # no temp dir here: the doctor's own directory, as before
    atexit.register(shutil.rmtree, root, True)
    return root


def run_json_command(
    cmd: List[str], timeout: float, stdin: str = "", env: Optional[Dict[str, str]] = None, on_progress=None
) -> Dict[str, Any]:
    """Run a command that prints one JSON object; kill its whole process group on timeout.

    stderr is kept as `log` (TensorFlow writes its C++ log there); lines starting with
    PROGRESS_PREFIX are passed to `on_progress` as they arrive instead.
    """
    child_env = dict(env if env is not None else os.environ)
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root(), child_env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        return {"error": f"cannot start {cmd[0]}: {exc}"}
    log: List[str] = []
    try:
        out, err = _communicate(proc, stdin, timeout, log, on_progress)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.wait()
        return {"error": f"timed out after {timeout:g} s (the child was killed)", "timed_out": True, "log": log[-50:]}
    log.extend(err)
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        return {"error": f"the child process was killed by {sig}", "crashed": True, "signal": sig, "log": log[-50:]}
    try:
        result = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        return {"error": f"the child exited with code {proc.returncode} without a result", "log": log[-50:]}
    result.setdefault("log", log)
    return result


def _communicate(proc: subprocess.Popen, stdin: str, timeout: float, log: List[str], on_progress):
    """Like Popen.communicate, but streams stderr so progress shows while the child works."""
    errs: List[str] = []
    out: List[str] = []
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None  # all three are pipes
    stdin_pipe, stdout_pipe, stderr_pipe = proc.stdin, proc.stdout, proc.stderr

    def read_stderr() -> None:
        for line in stderr_pipe:
            line = line.rstrip("\n")
            if line.startswith(PROGRESS_PREFIX):
                if on_progress is not None:
                    try:
                        on_progress(json.loads(line[len(PROGRESS_PREFIX) :]))
                    except ValueError:
                        errs.append(line)
            else:
                errs.append(line)

    readers = [
        threading.Thread(target=read_stderr, daemon=True),
        threading.Thread(target=lambda: out.append(stdout_pipe.read()), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        stdin_pipe.write(stdin)
        stdin_pipe.close()
    except (BrokenPipeError, OSError):
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log.extend(errs)
        raise
    for reader in readers:
        reader.join(timeout=5)
    return "".join(out), errs


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
