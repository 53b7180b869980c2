"""Interpreter checks: the Python version and whether we run from the recipe's env."""
from __future__ import annotations

import os

from packaging.specifiers import SpecifierSet

from merlin_doctor.checks import FactsView, check
from merlin_doctor.recipe import Recipe
from merlin_doctor.verdict import Finding, failed, passed, warned


def _setup_command(recipe) -> str:
    if recipe.is_container:
        return f"merlin-doctor container-cmd --recipe {recipe.name}  # the doctor inside the image; the host: check --host"
    name = recipe.env_name or recipe.name
    return f"merlin-doctor setup --recipe {recipe.name} && conda activate {name}  # = ./setup_env in a checkout"


@check("python.version", probes=["interpreter"])
def python_version(facts: FactsView, recipe: Recipe) -> Finding:
    """The Python version is the one the recipe's packages are built for."""
    found = facts["interpreter"].get("version", "")
    wanted = recipe.expect.python
    if not wanted:
        return passed(f"Python {found} (the recipe sets no version)", evidence={"version": found})
    if not SpecifierSet(wanted).contains(found, prereleases=True):
        return failed(f"the env's Python is {found}, but recipe {recipe.name} needs Python {wanted}",
                      fix=_setup_command(recipe),
                      evidence={"version": found, "wanted": wanted, "executable": facts["interpreter"].get("executable")})
    return passed(f"Python {found} ({wanted})", evidence={"version": found, "wanted": wanted})


@check("python.env", probes=["interpreter"])
def running_from_env(facts: FactsView, recipe: Recipe) -> Finding:
    """The doctor runs inside the active env (sys.prefix matches CONDA_PREFIX) and it is the recipe's."""
    info = facts["interpreter"]
    env = info.get("env", {})
    prefix, conda_prefix = info.get("prefix"), env.get("CONDA_PREFIX")
    evidence = {"sys_prefix": prefix, "CONDA_PREFIX": conda_prefix, "VIRTUAL_ENV": env.get("VIRTUAL_ENV")}
    wanted = recipe.env_name
    if conda_prefix and not info.get("is_active_conda_env", conda_prefix == prefix) and not env.get("VIRTUAL_ENV"):
        active = env.get("CONDA_DEFAULT_ENV") or conda_prefix
        return failed(f"the doctor runs from {prefix}, not from the active conda env {active}",
                      fix=f"python -m pip install merlin-doctor  # inside `conda activate {active}`",
                      evidence=evidence)
    if conda_prefix and wanted and os.path.basename(os.path.normpath(conda_prefix)) != wanted:
        return warned(f"the active env is {env.get('CONDA_DEFAULT_ENV') or conda_prefix}, not the recipe's {wanted!r}",
                      fix=f"conda activate {wanted}", evidence=evidence)
    if not conda_prefix and recipe.activate:
        return warned("not inside a conda env, so the recipe's activation variables cannot apply",
                      fix=_setup_command(recipe), evidence=evidence)
    where = env.get("CONDA_DEFAULT_ENV") or env.get("VIRTUAL_ENV") or prefix
    return passed(f"running from {where}", evidence=evidence)
