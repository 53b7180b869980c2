"""Steps converge an env to its recipe: each says whether it is done, what it would do, and does it.

`merlin-doctor setup` (and `./setup_env`) runs every step in order; `merlin-doctor fix` runs
the steps that failing verdicts name. Every `is_done` looks at the real state of the prefix,
never at a record of earlier runs, and every write is atomic (temp file + rename), so a run
killed at any point leaves nothing that looks done when it is not: the next run finishes it.

A step is an object with `id`, `title`, `after` (steps whose work can change this one's
state), `in_recipe(recipe)` (whether the recipe asks anything of it), `is_done(ctx)`,
`plan(ctx)` (the exact actions, for --dry-run and the prompt) and
`apply(ctx, progress)`, which returns warnings (an optional part that could not be done).
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Tuple

from merlin_doctor.atomic import write_atomic
from merlin_doctor.contained import ensure_parent
from merlin_doctor.names import STEP_IDS
from merlin_doctor.recipe import Recipe
from merlin_doctor.setup.engines import Engine

Progress = Callable[[str], None]

#: The steps in the order they run; each module defines `STEP`.

#: Test hook: a run sleeps when it reaches the point this variable names (a step id after
#: that step, `pip:GROUP` after a pip group, `env:LINE` at an engine progress line), so a
#: test can kill -9 it there and show the next run converges. Unset, it costs one lookup.
PAUSE_VAR = "MERLIN_DOCTOR_TEST_PAUSE_AFTER"


def _ignore(line: str) -> None:
    """The log sink when the caller keeps none."""


@dataclass
class StepContext:
    """What a step works on. `log` receives every command run and every file changed."""

    recipe: Recipe
    prefix: Path
    engine: Engine
    force: bool = False
    dry_run: bool = False
    log: Callable[[str], None] = field(default=_ignore)

    def expand(self, template: str) -> str:
        return self.recipe.expand(template, str(self.prefix))


class StepError(Exception):
    """A step could not converge; the message says what is wrong and what to do."""


class Step:
    id: str = ""
    title: str = ""
    after: Tuple[str, ...] = ()

    def in_recipe(self, recipe: Recipe) -> bool:
        """Whether the recipe asks anything of this step (the cpu recipe makes no links, say)."""
        return True

    def is_done(self, ctx: StepContext) -> bool:
        raise NotImplementedError

    def plan(self, ctx: StepContext) -> List[str]:
        raise NotImplementedError

    def apply(self, ctx: StepContext, progress: Progress) -> List[str]:
        raise NotImplementedError


def all_steps() -> List[Step]:
    return [importlib.import_module(f"merlin_doctor.setup.steps.{name}").STEP for name in STEP_IDS]


def pause_point(name: str) -> None:
    """The test hook described at PAUSE_VAR."""
    if os.environ.get(PAUSE_VAR) == name:
        sys.stderr.write(f"merlin-doctor: test pause at {name} (pid {os.getpid()})\n")
        sys.stderr.flush()
        time.sleep(3600)


def write_file(prefix: Path, path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` atomically, making its directory first; never outside `prefix`
    (contained.ensure_parent: a symlinked directory leading out of the env is refused)."""
    ensure_parent(str(prefix), str(path))
    write_atomic(str(path), data, mode)
