"""The venv engine: a recipe of kind `venv` is a Python venv with pip wheels only, no conda.

It makes the venv with a Python of the recipe's `major.minor` (`--python PATH`, else the
first one found on this machine) and never touches an existing directory that is not a
venv. Like the conda engines it converges in place: an existing venv is kept.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import List, Optional, Sequence

from merlin_doctor.envstate import venv_home
from merlin_doctor.setup.engines.base import EngineError, Progress


def venv_version(prefix: Path) -> Optional[str]:
    """The Python version a venv records in pyvenv.cfg (`version` from venv, `version_info`
    from virtualenv), or None when `prefix` is no venv."""
    try:
        text = Path(prefix, "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    m = re.search(r"^\s*version(?:_info)?\s*=\s*(\d+\.\d+(?:\.\d+)?)", text, re.M)
    return m.group(1) if m else "unknown"


def venv_state(prefix: Path) -> str:
    """``absent``, ``empty``, ``env`` (has pyvenv.cfg) or ``foreign``, as ``prefix_state`` for conda."""
    prefix = Path(prefix)
    if not prefix.exists():
        return "absent"
    if (prefix / "pyvenv.cfg").is_file():
        return "env"
    if prefix.is_dir() and not any(prefix.iterdir()):
        return "empty"
    return "foreign"


def _candidates(version: str) -> List[str]:
    """Where a `pythonX.Y` usually is: PATH, pyenv, the system and python.org/deadsnakes prefixes."""
    name = f"python{version}"
    found = [shutil.which(name) or ""]
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found += sorted(glob.glob(os.path.join(pyenv_root, "versions", f"{version}.*", "bin", name)), reverse=True)
    found += [f"/usr/bin/{name}", f"/usr/local/bin/{name}", f"/opt/python/{version}/bin/{name}"]
    return [c for c in dict.fromkeys(found) if c and os.access(c, os.X_OK)]


def python_reports(python: str) -> Optional[str]:
    """`major.minor` of an interpreter that can make venvs (`venv` and `ensurepip` import), else None."""
    try:
        done = subprocess.run(
            [python, "-c", "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def find_python(version: str) -> Optional[str]:
    """The first Python `version` on this machine that can make a venv."""
    return next((c for c in _candidates(version) if python_reports(c) == version), None)


class VenvEngine:
    """Makes the venv of a `kind: venv` recipe (the Engine contract; channels and specs do not apply)."""

    name = "venv"

    def __init__(self, version: str, python: Optional[str] = None):
        self.version = version
        self.asked = python
        self.python = python if python else find_python(version)
        self.exe = self.python  # shown as the engine's executable

    def available(self) -> bool:
        return self.python is not None and python_reports(self.python) == self.version

    def missing_reason(self) -> str:
        if self.asked:
            found = python_reports(self.asked)
            what = f"is Python {found}" if found else "cannot make a venv (no venv/ensurepip)"
            return f"--python {self.asked} {what}" + f", but the recipe needs Python {self.version}"
        looked = (
            ", ".join(_candidates(self.version)) or f"python{self.version} on PATH, ~/.pyenv/versions/{self.version}.*"
        )
        return (
            f"no Python {self.version} that can make a venv was found (looked at: {looked}); install one "
            f"(`pyenv install {self.version}`, or your distribution's python{self.version} and "
            f"python{self.version}-venv) and give it with --python PATH"
        )

    def create_command(self, prefix: Path, channels: Sequence[str], specs: Sequence[str]) -> List[str]:
        return [self.python or f"python{self.version}", "-m", "venv", str(prefix)]

    def create(
        self, prefix: Path, channels: Sequence[str], specs: Sequence[str], progress: Optional[Progress] = None
    ) -> None:
        state = venv_state(prefix)
        if state == "foreign":
            raise EngineError(f"{prefix} exists and is not a venv (no pyvenv.cfg); refusing to touch it")
        if state == "env":
            return
        if not self.available():
            raise EngineError(self.missing_reason())
        command = self.create_command(prefix, channels, specs)
        if progress:
            progress(" ".join(command))
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise EngineError(f"`{' '.join(command)}` failed: {(done.stderr or done.stdout).strip()[-400:]}")

    def installed(self, prefix: Path) -> dict:
        version = venv_version(prefix)
        return {"python": version} if version else {}

    def envs_dir(self) -> Path:
        """virtualenvwrapper's convention: $WORKON_HOME, else ~/.virtualenvs."""
        return venv_home()
