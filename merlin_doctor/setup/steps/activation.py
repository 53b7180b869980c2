"""Step `activation`: write the env's activate.d and deactivate.d scripts.

The text is exactly `activation.activate_script(recipe)` / `deactivate_script(recipe)`,
the same functions the `activation.scripts` check compares against. A different file of
that name is rewritten only when it carries the doctor's header (an older version of
ours) or with --force. deactivate.d is written first, so an activate script never exists
without its undo; both are written atomically.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List

from merlin_doctor.activation import (
    HEADER,
    SCRIPT_NAME,
    activate_script,
    deactivate_script,
)
from merlin_doctor.contained import read_regular, where_outside
from merlin_doctor.recipe import Recipe
from merlin_doctor.setup.steps import Progress, Step, StepContext, StepError, write_file


def _state(path: Path, text: str) -> str:
    """`ok`, `missing`, `stale` (ours, but old) or `foreign` (someone else's, or not a regular file).

    Compared as bytes: a CR in a value must read back as the CR written (text mode would
    turn it into a newline, and the step would never converge).
    """
    found = read_regular(str(path))
    if found is None:
        return "foreign" if os.path.lexists(path) else "missing"
    if found == text.encode("utf-8"):
        return "ok"
    return "stale" if found.startswith(HEADER.encode("utf-8")) else "foreign"


def inspect(recipe: Recipe, prefix: Path) -> List[Dict[str, Any]]:
    """Each script: path, wanted text and state (`_state`, or `outside` when its directory
    resolves out of the env through a symlink: never written, even with --force).

    A recipe that sets no variables needs no scripts (the check passes it too).
    """
    out: List[Dict[str, Any]] = []
    if not recipe.activate:
        return out
    for folder, text in (("deactivate.d", deactivate_script(recipe)), ("activate.d", activate_script(recipe))):
        path = prefix / "etc" / "conda" / folder / SCRIPT_NAME
        why = where_outside(str(prefix), str(path))
        out.append({"path": path, "text": text, "state": "outside" if why else _state(path, text), "why": why})
    return out


def _summary(ctx: StepContext, folder: str) -> str:
    """What a script does, with the env's real paths (the script itself says $CONDA_PREFIX)."""
    names = ", ".join(v.name for v in ctx.recipe.activate)
    if folder == "deactivate.d":
        return f"restores {names} to what they were before activation"
    parts = []
    for var in ctx.recipe.activate:
        if var.set is not None:
            parts.append(f"{var.name}={ctx.expand(var.set)}")
        else:
            where = " ".join(f"{k} {':'.join(ctx.expand(p) for p in v)}"
                             for k, v in (("prepend", var.prepend), ("append", var.append)) if v)
            parts.append(f"{var.name}: {where}")
    return "sets " + "; ".join(parts)


class ActivationScripts(Step):
    id = "activation"
    title = "Write the activation scripts (activate.d sets, deactivate.d restores)"

    def in_recipe(self, recipe: Recipe) -> bool:
        return bool(recipe.activate)

    def is_done(self, ctx: StepContext) -> bool:
        return all(e["state"] == "ok" for e in inspect(ctx.recipe, ctx.prefix))

    def plan(self, ctx: StepContext) -> List[str]:
        actions = []
        for e in inspect(ctx.recipe, ctx.prefix):
            if e["state"] == "ok":
                continue
            note = {"missing": "", "stale": "  (replaces an older merlin-doctor script)",
                    "outside": f"  -- refused: {e['why']}",
                    "foreign": "  (replaces a script merlin-doctor did not write: --force)" if ctx.force
                    else "  -- refused: a script merlin-doctor did not write is there (--force replaces it)"}
            actions.append(f"write {e['path']}: {_summary(ctx, e['path'].parent.name)}{note[e['state']]}")
        return actions

    def apply(self, ctx: StepContext, progress: Progress) -> List[str]:
        for e in inspect(ctx.recipe, ctx.prefix):
            if e["state"] == "ok":
                continue
            if e["state"] == "outside":
                raise StepError(f"refusing to write {e['path']}: {e['why']} (a symlink?); move it away and run again")
            if e["state"] == "foreign" and not ctx.force:
                raise StepError(f"{e['path']} exists and was not written by merlin-doctor; move it away, "
                                "or rerun with --force to replace it")
            write_file(ctx.prefix, e["path"], e["text"].encode("utf-8"))
            ctx.log(f"wrote {e['path']}" + ("" if e["state"] == "missing" else f" (replaced a {e['state']} one)"))
        return []


STEP = ActivationScripts()
