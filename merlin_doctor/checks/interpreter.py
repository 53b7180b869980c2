"""Interpreter checks: the Python version and whether we run from the recipe's env."""

from __future__ import annotations

import os
import shlex
from typing import Any, Dict

from packaging.specifiers import SpecifierSet

from merlin_doctor.activation import activate_command
from merlin_doctor.checks import FactsView, check
from merlin_doctor.recipe import Recipe, recipe_option
from merlin_doctor.verdict import Finding, failed, passed, warned

VENV_HOME = "${WORKON_HOME:-$HOME/.virtualenvs}"  # where `setup` puts a named venv (setup/engines/venv.py)


def _setup_command(recipe: Recipe, info: Dict[str, Any]) -> str:
    """How to build and enter the recipe's env, in terms that work here (no `conda activate` without conda)."""
    if recipe.is_container:
        return (
            f"merlin-doctor container-cmd --recipe {recipe.name}  # the doctor inside the image; the host: check --host"
        )
    name = recipe.env_name or recipe.name
    setup = f"merlin-doctor setup{recipe_option(recipe) or ' --recipe ' + recipe.name}"
    if recipe.is_venv:
        return f'{setup} && source "{VENV_HOME}/{name}/bin/activate"  # = ./setup_env in a checkout'
    if info.get("has_conda", True):
        return f"{setup} && {activate_command('conda', '', name)}  # = ./setup_env in a checkout"
    return f"{setup}  # = ./setup_env in a checkout; no conda here: it prints the line that activates the env"


def _install_doctor(info: Dict[str, Any]) -> str:
    """merlin-doctor is not on any package index: install it from where this one came from."""
    source = info.get("doctor_source")
    return (
        f"python -m pip install {shlex.quote(source)}"
        if source
        else "python -m pip install <the merlin-doctor checkout or wheel you installed from>  # it is not on PyPI"
    )


@check("python.version", probes=["interpreter"])
def python_version(facts: FactsView, recipe: Recipe) -> Finding:
    """The Python version is the one the recipe's packages are built for."""
    found = facts["interpreter"].get("version", "")
    wanted = recipe.expect.python
    if not wanted:
        return passed(f"Python {found} (the recipe sets no version)", evidence={"version": found})
    if not SpecifierSet(wanted).contains(found, prereleases=True):
        return failed(
            f"the env's Python is {found}, but recipe {recipe.name} needs Python {wanted}",
            fix=_setup_command(recipe, facts["interpreter"]),
            evidence={"version": found, "wanted": wanted, "executable": facts["interpreter"].get("executable")},
        )
    return passed(f"Python {found} ({wanted})", evidence={"version": found, "wanted": wanted})


@check("python.env", probes=["interpreter"])
def running_from_env(facts: FactsView, recipe: Recipe) -> Finding:
    """The doctor runs inside the active env (sys.prefix matches VIRTUAL_ENV or CONDA_PREFIX) and it is the recipe's."""
    info = facts["interpreter"]
    env = info.get("env", {})
    prefix, conda_prefix, venv = info.get("prefix"), env.get("CONDA_PREFIX"), env.get("VIRTUAL_ENV")
    evidence = {"sys_prefix": prefix, "CONDA_PREFIX": conda_prefix, "VIRTUAL_ENV": venv}
    wanted = recipe.env_name
    if venv and not info.get("is_active_venv", venv == prefix):
        return failed(
            f"the doctor runs from {prefix}, not from the active venv {venv}",
            fix=f"{_install_doctor(info)}  # with {venv}/bin/activate sourced",
            evidence=evidence,
        )
    if venv:
        return passed(f"running from the venv {venv}", evidence=evidence)
    if conda_prefix and not info.get("is_active_conda_env", conda_prefix == prefix):
        active = env.get("CONDA_DEFAULT_ENV") or conda_prefix
        return failed(
            f"the doctor runs from {prefix}, not from the active conda env {active}",
            fix=f"{_install_doctor(info)}  # inside `conda activate {active}`",
            evidence=evidence,
        )
    if conda_prefix and wanted and os.path.basename(os.path.normpath(conda_prefix)) != wanted and not recipe.is_venv:
        return warned(
            f"the active env is {env.get('CONDA_DEFAULT_ENV') or conda_prefix}, not the recipe's {wanted!r}",
            fix=f"conda activate {wanted}" if info.get("has_conda", True) else _setup_command(recipe, info),
            evidence=evidence,
        )
    if not conda_prefix and recipe.activate:
        return warned(
            "not inside an activated env, so the recipe's activation variables cannot apply",
            fix=_setup_command(recipe, info),
            evidence=evidence,
        )
    where = env.get("CONDA_DEFAULT_ENV") or prefix
    return passed(f"running from {where}", evidence=evidence)
