"""Step `links`: the recipe's symlinks inside the env (TensorRT's `.so.7` names → `.so.8`).

A link is made only when its target exists (the optional TensorRT group may be absent);
an existing correct link is left alone; a real file, or a link pointing elsewhere, is
never replaced without --force. A link whose directory resolves out of the env (a
symlinked directory) is never made, even with --force. A link is swapped in with a
rename, so it is either the old entry or the new link, never missing halfway.
"""

from __future__ import annotations

import os
import shlex
from typing import Any, Dict, List

from merlin_doctor.contained import ensure_parent
from merlin_doctor.envstate import SETTLED_LINKS, link_states
from merlin_doctor.recipe import Recipe
from merlin_doctor.setup.steps import Progress, Step, StepContext, StepError


def _action(entry: Dict[str, Any], force: bool) -> str:
    ln = f"ln -s {shlex.quote(entry['target'])} {shlex.quote(entry['path'])}"
    state = entry["state"]
    if state == "outside":
        return f"refuse {entry['path']}: {entry['why']}"
    if state == "missing":
        return ln
    if state == "no-target":
        return f"{ln}   # only if {entry['target']} is there by then"
    what = "a real file" if state == "file" else f"a link to {entry['points_to']}"
    if force:
        return f"{ln}   # replaces {what} (--force)"
    return f"leave {entry['path']} alone: it is {what}, not made by merlin-doctor (--force replaces it)"


class Links(Step):
    id = "links"
    title = "Make the recipe's symlinks (TensorRT .so.7 names for the .so.8 libraries)"
    after = ("pip",)

    def in_recipe(self, recipe: Recipe) -> bool:
        return bool(recipe.links)

    def is_done(self, ctx: StepContext) -> bool:
        return all(e["state"] in SETTLED_LINKS for e in link_states(ctx.recipe, str(ctx.prefix)))

    def plan(self, ctx: StepContext) -> List[str]:
        return [_action(e, ctx.force) for e in link_states(ctx.recipe, str(ctx.prefix)) if e["state"] != "ok"]

    def apply(self, ctx: StepContext, progress: Progress) -> List[str]:
        warnings, refused = [], []
        for entry in link_states(ctx.recipe, str(ctx.prefix)):
            state, path = entry["state"], entry["path"]
            if state == "ok":
                continue
            if state == "no-target":
                warnings.append(f"no link {path}: its target {entry['target']} is not there")
                continue
            if state == "outside":
                refused.append(_action(entry, ctx.force))
                continue
            if state in ("file", "elsewhere") and not ctx.force:
                refused.append(_action(entry, False))
                continue
            ensure_parent(str(ctx.prefix), path)
            _swap_in_link(entry["target"], path)
            ctx.log(f"linked {path} -> {entry['target']}" + (f" (replaced {state})" if state != "missing" else ""))
        if refused:
            raise StepError("; ".join(refused))
        return warnings


def _swap_in_link(target: str, path: str) -> None:
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.merlin-doctor.tmp")
    if os.path.lexists(tmp):
        os.unlink(tmp)  # left by a run killed between symlink and rename
    try:
        os.symlink(target, tmp)
    except OSError as exc:
        raise StepError(f"cannot make the link {path}: {exc.strerror}") from None
    try:
        os.replace(tmp, path)
    except OSError as exc:
        os.unlink(tmp)
        raise StepError(f"cannot replace {path} with a link: {exc.strerror}") from None


STEP = Links()
