"""Which env the doctor judges: the one named by `--prefix DIR` / `--name ENV`, or the
one it runs in. Like `conda doctor -p/-n`, the doctor is installed once (pipx, any
Python >= 3.9) and judges any env from outside it.

For another env, the probe context carries its prefix and interpreter, and its
environment is the doctor's own shell with the env's activation applied
(`activated.ActivatedEnv`); probes/scheduler.py then runs every probe that reads the
env's Python with that interpreter.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from merlin_doctor.envstate import env_kind, venv_home
from merlin_doctor.errors import InputError
from merlin_doctor.probes.context import ProbeContext
from merlin_doctor.recipe import Recipe
from merlin_doctor.verdict import Verdict


@dataclass(frozen=True)
class JudgedEnv:
    """An env judged from outside: its directory, its interpreter and how it activates."""

    prefix: str
    python: str
    kind: str  # activated.CONDA or activated.VENV

    def environ(self, recipe: Recipe, base: Dict[str, str]) -> Dict[str, str]:
        """The doctor's environment as a shell that activated this env would hold it."""
        from merlin_doctor.activated import ActivatedEnv

        own = dict(base)
        if own.get("VIRTUAL_ENV") and _same(own["VIRTUAL_ENV"], sys.prefix):
            own.pop("VIRTUAL_ENV")  # the doctor's own venv (pipx or `venv`): not part of the judged shell
        return ActivatedEnv(recipe, self.prefix, self.kind).environ(own)


def _same(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _interpreter(prefix: Path) -> Optional[str]:
    for name in ("python", "python3"):
        path = prefix / "bin" / name
        if os.access(path, os.X_OK):
            return str(path)
    return None


def judged_env(recipe: Recipe, prefix: Optional[str], name: Optional[str]) -> Optional[JudgedEnv]:
    """The env `--prefix`/`--name` names, or None for the env the doctor runs in.

    Bad input (both flags, no such env, no interpreter in it) is an InputError.
    """
    if prefix and name:
        raise InputError("give --name or --prefix, not both")
    if not (prefix or name):
        return None
    if name and recipe.is_venv:
        path = venv_home() / name  # where setup puts a named venv
        if not path.is_dir():
            raise InputError(f"no venv named {name!r} (looked for {path}); give its directory with --prefix DIR")
    elif name:
        from merlin_doctor.setup.converge import resolve_engine, resolve_prefix

        path = resolve_prefix(recipe, resolve_engine("auto")[0], name, None)
        if not path.is_dir():
            raise InputError(f"no env named {name!r} (looked for {path}); give its directory with --prefix DIR")
    else:
        path = Path(os.path.abspath(os.path.expanduser(prefix or "")))
        if not path.is_dir():
            raise InputError(f"--prefix {prefix}: no such directory")
    kind = env_kind(str(path))
    if kind is None:
        raise InputError(f"{path} is not a conda env or a venv (it has no conda-meta/ or pyvenv.cfg)")
    # An env without its interpreter (a half-made one) is still judged: its Python's probes say so.
    return JudgedEnv(str(path), _interpreter(path) or str(path / "bin" / "python"), kind)


#: `python -m pip ...` at the start of a command (or after `&&`, `;`): the Python on PATH.
_PYTHON_COMMAND = re.compile(r"(^|&&\s*|;\s*)python(?= -m )")


def env_command(fix: str, python: str) -> str:
    """A fix with each `python -m ...` run by the judged env's interpreter: judged from outside,
    the `python` on PATH is the doctor's shell's, not the env's."""
    return _PYTHON_COMMAND.sub(lambda m: m.group(1) + shlex.quote(python), fix)


#: `merlin-doctor fix` not already naming its env.
_FIX_COMMAND = re.compile(r"\bmerlin-doctor fix\b(?! --prefix)")


def fix_for_env(fix: str, prefix: str) -> str:
    """A `merlin-doctor fix` line that repairs the env judged from outside, not the shell's own."""
    return _FIX_COMMAND.sub(lambda m: f"merlin-doctor fix --prefix {shlex.quote(prefix)}", fix)


def in_env_commands(
    python: Optional[str], prefix: Optional[str], on_verdict: Optional[Callable[[Verdict], None]]
) -> Optional[Callable[[Verdict], None]]:
    """`on_verdict`, with each verdict's fix first made to speak the env judged from outside:
    `python -m` runs its interpreter, `merlin-doctor fix` names its prefix (both None: the
    doctor runs in the env judged, nothing changes)."""
    if python is None and prefix is None:
        return on_verdict

    def each(verdict: Verdict) -> None:
        if verdict.fix and python:
            verdict.fix = env_command(verdict.fix, python)
        if verdict.fix and prefix:
            verdict.fix = fix_for_env(verdict.fix, prefix)
        if on_verdict is not None:
            on_verdict(verdict)

    return each


def probe_context(
    recipe: Recipe,
    prefix: Optional[str],
    name: Optional[str],
    timeout: float,
    progress: Optional[Callable[[Dict[str, Any]], None]] = None,
    options: Optional[Dict[str, Any]] = None,
) -> ProbeContext:
    """The probe context for the env the flags name (this process's own when they name none)."""
    judged = judged_env(recipe, prefix, name)
    context = ProbeContext(recipe_path=recipe.path, timeout=timeout, progress=progress, options=dict(options or {}))
    if judged is None:
        return context  # the env the doctor runs in, as this shell has it
    context.env = judged.environ(recipe, context.env)
    context.prefix = judged.prefix
    context.python = None if _same(judged.prefix, sys.prefix) else judged.python
    return context
