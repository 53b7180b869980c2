"""Isolated probes: a hang, a crash or garbage output becomes data within the timeout."""

from __future__ import annotations

import sys
import time

import pytest

from merlin_doctor.probes.context import ProbeContext
from merlin_doctor.probes.isolate import run_json_command
from merlin_doctor.probes.scheduler import run_probe

pytestmark = pytest.mark.per_interpreter  # the doctor must behave the same on each Python it supports


def _py(code: str, timeout: float = 5, **kw):
    return run_json_command([sys.executable, "-c", code], timeout, **kw)


def test_result_and_log_lines_are_returned():
    r = _py("import sys, json; print('tf says hi', file=sys.stderr); print(json.dumps({'ok': 1}))")
    assert r["ok"] == 1 and r["log"] == ["tf says hi"]


def test_a_hang_is_killed_at_the_timeout_with_its_children():
    started = time.monotonic()
    r = _py(
        "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        "print('waiting', file=sys.stderr, flush=True); time.sleep(60)",
        timeout=1.5,
    )
    assert time.monotonic() - started < 10
    assert r["timed_out"] is True and "timed out after 1.5 s" in r["error"]


def test_a_segfault_is_reported_with_the_signal():
    r = _py("import ctypes; ctypes.string_at(0)")
    assert r["crashed"] is True and r["signal"] == "SIGSEGV"


def test_no_json_is_an_error_with_the_exit_code():
    r = _py("import sys; print('not json'); sys.exit(3)")
    assert r["error"] == "the child exited with code 3 without a result"


def test_progress_lines_are_streamed_not_logged():
    seen = []
    r = _py(
        "import sys, json; print('PROGRESS {\"epoch\": 1}', file=sys.stderr, flush=True); print('{}')",
        on_progress=seen.append,
    )
    assert seen == [{"epoch": 1}] and r["log"] == []


def test_missing_interpreter_is_data():
    r = run_json_command(["/nonexistent/python"], 5)
    assert r["error"].startswith("cannot start /nonexistent/python")


def test_the_real_nvml_probe_on_a_gpu_less_machine_answers_cleanly():
    from merlin_doctor.probes.registry import probe_named

    r = run_probe(probe_named("nvml"), ProbeContext(timeout=20))
    assert r["loaded"] is False
    assert "nvml" in r["error"].lower() or "pynvml" in r["error"]


def test_call_in_fork_blames_a_crash_on_its_own_call():
    import ctypes

    from merlin_doctor.probes.isolate import call_in_fork

    assert call_in_fork(lambda: {"ctypes": ctypes.string_at(0)}, 5)["signal"] == "SIGSEGV"
    assert call_in_fork(lambda: {"still": "alive"}, 5) == {"still": "alive"}


def test_call_in_fork_kills_a_hang_and_passes_big_results():
    from merlin_doctor.probes.isolate import call_in_fork

    started = time.monotonic()
    assert call_in_fork(lambda: time.sleep(60) or {}, 0.5)["timed_out"] is True
    assert time.monotonic() - started < 5
    big = {"x": "y" * 300_000}
    assert call_in_fork(lambda: big, 5) == big


def test_an_exception_in_the_fork_is_data():
    from merlin_doctor.probes.isolate import call_in_fork

    assert call_in_fork(lambda: 1 / 0, 5) == {"error": "ZeroDivisionError: division by zero"}
