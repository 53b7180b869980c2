"""A doctor installed once, on another Python, judges an env from outside (`--prefix`)
exactly as a doctor installed inside that env judges it.

The outside doctor is a real `pip install` of this checkout into a fresh venv of the
default python3; the env judged is the Python 3.9 CPU TensorFlow venv the tests use.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
from conftest import REPO

#: Verdicts whose summary holds a live measurement that moves between two runs.
MEASURED = {"host.disk", "e2e.ple", "tf.matmul", "tf.import"}


@pytest.fixture(scope="module")
def outside_doctor(tmp_path_factory) -> str:
    """`merlin-doctor` installed (not editable) into a fresh venv of python3."""
    venv = tmp_path_factory.mktemp("doctor") / "venv"
    python3 = shutil.which("python3") or sys.executable
    subprocess.run([python3, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return str(venv / "bin" / "merlin-doctor")


def _activated(prefix: Path) -> Dict[str, str]:
    """This shell after `source PREFIX/bin/activate`."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME", "NO_COLOR")}
    return dict(env, VIRTUAL_ENV=str(prefix), PATH=f"{prefix / 'bin'}{os.pathsep}{env.get('PATH', '')}")


def _run(cmd: List[str], env: Dict[str, str], cwd: str) -> dict:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def _compare(inside: dict, outside: dict) -> None:
    assert [(v["id"], v["status"]) for v in outside["verdicts"]] == [(v["id"], v["status"]) for v in inside["verdicts"]]
    summaries = lambda d: {v["id"]: v["summary"] for v in d["verdicts"] if v["id"] not in MEASURED}  # noqa: E731
    assert summaries(outside) == summaries(inside)
    probes_in, probes_out = inside["facts"]["probes"], outside["facts"]["probes"]
    for key in ("version", "executable", "prefix"):
        assert probes_out["interpreter"][key] == probes_in["interpreter"][key]
    assert set(probes_out["packages"]["distributions"]) == set(probes_in["packages"]["distributions"])
    assert inside["exit_code"] == outside["exit_code"]


@pytest.mark.slow
def test_a_doctor_on_python3_judges_the_py39_env_by_prefix_as_the_doctor_inside_it(outside_doctor, tf_python, tmp_path):
    prefix = Path(tf_python).parent.parent
    args = ["check", "--recipe", "cpu", "--cpu-ok", "--json"]
    outside_env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "NO_COLOR")}
    inside_env = dict(_activated(prefix), PYTHONPATH=str(REPO))  # this checkout's code, inside the env
    for extra in (["--fast"], []):  # the quick checks, then TensorFlow and the PLE as well
        outside = _run([outside_doctor, *args, *extra, "--prefix", str(prefix)], outside_env, str(tmp_path))
        inside = _run([tf_python, "-m", "merlin_doctor", *args, *extra], inside_env, str(REPO))
        _compare(inside, outside)
        assert outside["facts"]["probes"]["interpreter"]["version"].startswith("3.9.")
        assert not any(v["status"] in ("fail", "error") for v in outside["verdicts"]), outside["verdicts"]
    statuses = {v["id"]: v["status"] for v in outside["verdicts"]}
    assert statuses["tf.import"] == statuses["e2e.ple"] == "pass"


def test_prefix_that_is_not_an_env_is_a_usage_error(tmp_path):
    from conftest import doctor

    result = doctor("check", "--fast", "--prefix", str(tmp_path))
    assert result.returncode == 2
    assert "is not a conda env or a venv" in result.stderr and "Traceback" not in result.stderr
    both = doctor("check", "--prefix", str(tmp_path), "--name", "merlin")
    assert both.returncode == 2 and "not both" in both.stderr
