"""Step `env`: create the conda env with the recipe's channels and conda dependencies
(a `kind: venv` recipe: the venv, with a Python of the recipe's version).

The engine never deletes an existing env: an existing one is converged in place, and
a directory that is not a conda env is refused. Done means every conda spec of the
recipe is satisfied by a package recorded in `conda-meta/`; a record torn by a killed
run counts as missing, so the next run repairs it.
"""

from __future__ import annotations

import shlex
from typing import Dict, List

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from merlin_doctor.recipe import conda_spec
from merlin_doctor.setup.engines import installed_packages, prefix_state
from merlin_doctor.setup.engines.venv import venv_version
from merlin_doctor.setup.steps import Progress, Step, StepContext, pause_point


def _specifier(constraint: str) -> SpecifierSet:
    """A conda version constraint as a PEP 440 specifier set.

    `=1.2` (and `=1.2=build`) is conda's fuzzy match, 1.2.*; a bare `1.2.3` is exact;
    operators (`>=1,<2`, `==1.2.*`) read the same in both syntaxes.
    """
    if constraint.startswith("=") and not constraint.startswith("=="):
        version = constraint[1:].split("=")[0]
        return SpecifierSet("==" + (version if version.endswith(".*") else version + ".*"))
    if constraint[:1].isdigit():
        return SpecifierSet("==" + constraint.split()[0])
    return SpecifierSet(constraint.replace(" ", ""))


def spec_satisfied(spec: str, installed: Dict[str, str]) -> bool:
    """Whether `installed` ({name: version}) holds a package matching the conda `spec`.

    A constraint this reader cannot express (`|`, brackets, non-PEP 440 versions) is
    judged by the package's presence alone; the engine itself resolves it exactly.
    """
    parts = conda_spec(spec)
    if not parts or parts[0] not in installed:
        return False
    name, constraint = parts
    if not constraint or "|" in constraint or "[" in constraint:
        return True
    try:
        return _specifier(constraint).contains(Version(installed[name]), prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return True


class CreateEnv(Step):
    id = "env"
    title = "Create the env (conda: the recipe's channels and packages; venv: the recipe's Python)"

    def is_done(self, ctx: StepContext) -> bool:
        if ctx.recipe.is_venv:
            found = venv_version(ctx.prefix) or ""
            return (ctx.prefix / "bin" / "python").exists() and found.split(".")[:2] == (
                ctx.recipe.python_version or ""
            ).split(".")
        if prefix_state(ctx.prefix) != "env":
            return False
        installed = installed_packages(ctx.prefix)
        return all(spec_satisfied(s, installed) for s in ctx.recipe.conda_dependencies)

    def plan(self, ctx: StepContext) -> List[str]:
        recipe = ctx.recipe
        command = ctx.engine.create_command(ctx.prefix, recipe.channels, recipe.conda_dependencies)
        if command is not None:
            return [shlex.join(command) + (f"   # Python {recipe.python_version}" if recipe.is_venv else "")]
        verb = "update in place" if prefix_state(ctx.prefix) == "env" else "create"
        return [
            f"{ctx.engine.name} (embedded engine): solve {' '.join(recipe.conda_dependencies)} "
            f"from channels {', '.join(recipe.channels) or '(none)'}; {verb} {ctx.prefix}"
        ]

    def apply(self, ctx: StepContext, progress: Progress) -> List[str]:
        def report(line: str) -> None:
            progress(line)
            pause_point(f"env:{line}")

        ctx.log(f"run: {self.plan(ctx)[0]}")
        ctx.prefix.parent.mkdir(parents=True, exist_ok=True)
        ctx.engine.create(ctx.prefix, ctx.recipe.channels, ctx.recipe.conda_dependencies, report)
        return []


STEP = CreateEnv()
