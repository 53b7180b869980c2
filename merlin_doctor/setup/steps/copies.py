"""Step `copies`: the recipe's file copies inside the env (libdevice into lib/nvvm/libdevice/).

A copy is done when the destination's sha256 equals the source's, so a truncated copy
from a killed run is never mistaken for a finished one (and copies are written to a
temp file and renamed anyway). A different file already at the destination was not
made from this source: it is replaced only with --force. A copy that would read from or
write to outside the env (through a symlink) is refused, even with --force.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Dict, List

from merlin_doctor.contained import is_inside, read_regular
from merlin_doctor.envstate import copy_states
from merlin_doctor.recipe import Recipe
from merlin_doctor.setup.steps import Progress, Step, StepContext, StepError, write_file


def _action(entry: Dict[str, Any], force: bool) -> str:
    cp = (
        f"mkdir -p {shlex.quote(str(Path(entry['to']).parent))} && "
        f"cp {shlex.quote(entry['from'])} {shlex.quote(entry['to'])}   # checked by sha256"
    )
    if entry["state"] == "outside":
        return f"refuse to copy {entry['from']} -> {entry['to']}: {entry['why']} (a symlink?)"
    if entry["state"] == "differs":
        return (
            cp + ", replaces a different file (--force)"
            if force
            else (f"leave {entry['to']} alone: it differs from {entry['from']} (--force replaces it)")
        )
    if entry["state"] == "no-source":
        return cp + f"; {entry['from']} must be there by then (the env step installs it)"
    return cp


class Copies(Step):
    id = "copies"
    title = "Copy files inside the env (libdevice where XLA looks for it)"
    after = ("env",)

    def in_recipe(self, recipe: Recipe) -> bool:
        return bool(recipe.copies)

    def is_done(self, ctx: StepContext) -> bool:
        return all(e["state"] == "ok" for e in copy_states(ctx.recipe, str(ctx.prefix)))

    def plan(self, ctx: StepContext) -> List[str]:
        return [_action(e, ctx.force) for e in copy_states(ctx.recipe, str(ctx.prefix)) if e["state"] != "ok"]

    def apply(self, ctx: StepContext, progress: Progress) -> List[str]:
        problems = []
        for entry in copy_states(ctx.recipe, str(ctx.prefix)):
            state = entry["state"]
            if state == "no-source":
                problems.append(
                    f"{entry['from']} is missing, so it cannot be copied: the env step should have "
                    "installed it; rerun `merlin-doctor setup --only env`"
                )
            elif state == "outside" or (state == "differs" and not ctx.force):
                problems.append(_action(entry, False))
            elif state != "ok":
                src = Path(entry["from"])
                data = read_regular(str(src))
                if data is None or not is_inside(str(ctx.prefix), str(src)):
                    problems.append(f"{src} is no longer a regular file inside the env; nothing was copied")
                    continue
                write_file(ctx.prefix, Path(entry["to"]), data, src.stat().st_mode & 0o777)
                ctx.log(f"copied {entry['from']} -> {entry['to']} (sha256 {entry['from_sha256'][:12]})")
        if problems:
            raise StepError("; ".join(problems))
        return []


STEP = Copies()
