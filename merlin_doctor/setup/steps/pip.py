"""Step `pip`: install the recipe's pip groups in order, each with its own index options.

pip runs as the env's own `PREFIX/bin/python -m pip`, never the doctor's interpreter.
A group is done when every requirement is met by the distributions in the env's
site-packages, read from their metadata files (nothing is imported), so a run killed
mid-install simply installs what is still missing. A group marked `optional` that fails
to install (NVIDIA's index unreachable, no wheel for this platform) is a warning.
"""

from __future__ import annotations

import collections
import shlex
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Dict, List

from packaging.utils import canonicalize_name

from merlin_doctor.envstate import unmet as requirements_unmet
from merlin_doctor.recipe import PipGroup
from merlin_doctor.setup.steps import (
    Progress,
    Step,
    StepContext,
    StepError,
    pause_point,
)

ERROR_TAIL_LINES = 15


def env_distributions(site_packages: str) -> Dict[str, str]:
    """`{canonical name: version}` of what is installed in `site_packages`, from metadata only."""
    found: Dict[str, str] = {}
    for dist in metadata.distributions(path=[site_packages]):
        name = dist.metadata["Name"]
        if name and dist.version:
            found.setdefault(canonicalize_name(name), dist.version)
    return found


def unmet(group: PipGroup, installed: Dict[str, str], python_version: str) -> List[str]:
    """The group's requirements that `installed` does not satisfy (envstate judges them)."""
    return [str(req) for req, _ in requirements_unmet(group.requirements, installed, python_version)]


def pip_command(ctx: StepContext, group: PipGroup) -> List[str]:
    python = str(ctx.prefix / "bin" / "python")
    return [python, "-m", "pip", "install", *group.pip_options(), *group.requirements]


def _run(command: List[str], progress: Progress) -> List[str]:
    """Run pip, streaming its lines; return the last lines when it fails, else []."""
    tail: collections.deque = collections.deque(maxlen=ERROR_TAIL_LINES)
    try:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        return [f"could not run {command[0]}: {exc}"]
    with proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                tail.append(line)
                progress(line)
    return list(tail) if proc.returncode != 0 else []


class PipGroups(Step):
    id = "pip"
    title = "Install the pip groups in order with the env's own pip"
    after = ("env",)

    def _pending(self, ctx: StepContext) -> List[PipGroup]:
        recipe = ctx.recipe
        site = recipe.site_packages(str(ctx.prefix))
        installed = env_distributions(site) if Path(site).is_dir() else {}
        version = recipe.python_version or "3.9"
        return [g for g in recipe.pip if unmet(g, installed, version)]

    def is_done(self, ctx: StepContext) -> bool:
        return not self._pending(ctx)

    def plan(self, ctx: StepContext) -> List[str]:
        return [
            shlex.join(pip_command(ctx, g))
            + ("   # optional: " + (g.why or "a failure only warns") if g.optional else "")
            for g in self._pending(ctx)
        ]

    def apply(self, ctx: StepContext, progress: Progress) -> List[str]:
        warnings = []
        for group in self._pending(ctx):
            command = pip_command(ctx, group)
            ctx.log(f"run: {shlex.join(command)}")
            tail = _run(command, progress)
            if tail and group.optional:
                warnings.append(
                    f"optional pip group {group.name!r} was not installed ({group.why or 'optional'}); "
                    f"pip said: {tail[-1]}"
                )
            elif tail:
                raise StepError(
                    f"pip group {group.name!r} failed to install:\n  "
                    + "\n  ".join(tail)
                    + f"\nrerun it yourself to see everything: {shlex.join(command)}"
                )
            pause_point(f"pip:{group.name}")
        return warnings


STEP = PipGroups()
