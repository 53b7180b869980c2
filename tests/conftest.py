"""Shared test helpers: run the real CLI in a subprocess, find the test interpreters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
#: The test running now (conda_channel.require_rattler asks whether it runs in both passes).
CURRENT: Dict[str, pytest.Item] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Known before any fixture (module-scoped ones too) is set up for the test."""
    CURRENT["item"] = item


def runs_in_both_passes() -> bool:
    """scripts/test runs every test under Python 3.9 and only `per_interpreter` ones again under python3."""
    item = CURRENT.get("item")
    return item is not None and item.get_closest_marker("per_interpreter") is not None


def _interpreter(variable: str, default: Path) -> str:
    """An interpreter the test setup (scripts/dev-env) builds; missing means setup was skipped."""
    path = Path(os.environ.get(variable) or default)
    if not path.exists():
        pytest.fail(f"{path} does not exist: run scripts/test (it builds the test venvs), or set {variable}")
    return str(path)


@pytest.fixture(scope="session")
def tf_python() -> str:
    """Python 3.9 with the real CPU TensorFlow 2.10 / Merlin 23.08 stack and merlin-doctor."""
    return _interpreter("MERLIN_DOCTOR_TF_PYTHON", REPO / ".venv" / "py39" / "bin" / "python")


@pytest.fixture(scope="session")
def engine_python() -> str:
    """Python >= 3.10 with py-rattler (the embedded conda engine) and merlin-doctor."""
    return _interpreter("MERLIN_DOCTOR_ENGINE_PYTHON", REPO / ".venv" / "py3" / "bin" / "python")


def doctor(
    *args: str,
    python: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
    stdin: Optional[str] = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """Run `python -m merlin_doctor ARGS` as a user would, from the repository root."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.pop("NO_COLOR", None)
    cmd: List[str] = [python or sys.executable, "-m", "merlin_doctor", *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=full_env, input=stdin, timeout=timeout, cwd=str(REPO)
    )


def doctor_json(*args: str, **kwargs) -> dict:
    result = doctor(*args, "--json", **kwargs)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def load_fixture(name: str) -> dict:
    with open(FIXTURES / "facts" / name, encoding="utf-8") as fh:
        return json.load(fh)


def pytest_configure(config) -> None:
    # Registered here rather than in pyproject.toml, whose hash stamps the test venvs.
    config.addinivalue_line(
        "markers",
        "realbin: NVIDIA's real CUDA wheels in .venv/tf210-pip "
        "(tests/test_realbin.py; run once, in the Python 3.9 pass)",
    )
