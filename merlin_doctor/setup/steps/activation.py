"""Step `activation`: write the env's activation scripts (conda: activate.d and deactivate.d;
venv: etc/merlin-doctor/ and the two lines in bin/activate that run them).

The text is exactly `activation.activate_script(recipe)` / `deactivate_script(recipe)`,
the same functions the `activation.scripts` check compares against. A different file of
that name is rewritten only when it carries the doctor's header (an older version of
ours) or with --force. The undo is written first, so an activate script never exists
without it; every file is written atomically. A venv's bin/activate (written by `venv`,
not by us) only gains our two marked lines; nothing in it is replaced.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List

from merlin_doctor.activation import (
    HEADER,
    activate_script,
    add_hooks,
    deactivate_script,
    hooked,
    script_paths,
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
    texts = {"deactivate": deactivate_script(recipe), "activate": activate_script(recipe)}
    for which, where in script_paths(recipe.kind, str(prefix)):
        path, text = Path(where), texts[which]
        why = where_outside(str(prefix), str(path))
        out.append(
            {"path": path, "text": text, "state": "outside" if why else _state(path, text), "why": why, "which": which}
        )
    if recipe.is_venv:
        out.append(_hook_entry(prefix))
    return out


def _hook_entry(prefix: Path) -> Dict[str, Any]:
    """The venv's bin/activate: `ok` when it runs both scripts, `missing` when it still has to."""
    path = prefix / "bin" / "activate"
    why = where_outside(str(prefix), str(path))
    found = None if why else read_regular(str(path))
    if found is None:
        return {"path": path, "text": None, "state": "outside" if why else "no-venv", "why": why, "which": "hook"}
    text = found.decode("utf-8", "replace")
    return {
        "path": path,
        "text": text,
        "state": "ok" if all(hooked(text).values()) else "missing",
        "why": None,
        "which": "hook",
    }


def _summary(ctx: StepContext, which: str) -> str:
    """What a script does, with the env's real paths (the script itself says $CONDA_PREFIX or $VIRTUAL_ENV)."""
    names = ", ".join(v.name for v in ctx.recipe.activate)
    if which == "hook":
        return "add two marked lines so that `source bin/activate` runs activate.sh and `deactivate` runs deactivate.sh"
    if which == "deactivate":
        return f"restores {names} to what they were before activation"
    parts = []
    for var in ctx.recipe.activate:
        if var.set is not None:
            parts.append(f"{var.name}={ctx.expand(var.set)}")
        else:
            where = " ".join(
                f"{k} {':'.join(ctx.expand(p) for p in v)}"
                for k, v in (("prepend", var.prepend), ("append", var.append))
                if v
            )
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
            note = {
                "missing": "",
                "no-venv": "  (once the env step has made the venv)",
                "stale": "  (replaces an older merlin-doctor script)",
                "outside": f"  -- refused: {e['why']}",
                "foreign": "  (replaces a script merlin-doctor did not write: --force)"
                if ctx.force
                else "  -- refused: a script merlin-doctor did not write is there (--force replaces it)",
            }
            actions.append(f"write {e['path']}: {_summary(ctx, e['which'])}{note[e['state']]}")
        return actions

    def apply(self, ctx: StepContext, progress: Progress) -> List[str]:
        for e in inspect(ctx.recipe, ctx.prefix):
            if e["state"] == "ok":
                continue
            if e["state"] == "outside":
                raise StepError(f"refusing to write {e['path']}: {e['why']} (a symlink?); move it away and run again")
            if e["state"] == "foreign" and not ctx.force:
                raise StepError(
                    f"{e['path']} exists and was not written by merlin-doctor; move it away, "
                    "or rerun with --force to replace it"
                )
            if e["which"] == "hook":
                _hook(ctx, e)
                ctx.log(f"added merlin-doctor's two lines to {e['path']}")
                continue
            write_file(ctx.prefix, e["path"], e["text"].encode("utf-8"))
            ctx.log(f"wrote {e['path']}" + ("" if e["state"] == "missing" else f" (replaced a {e['state']} one)"))
        return []


def _hook(ctx: StepContext, entry: Dict[str, Any]) -> None:
    if entry["state"] == "no-venv":
        raise StepError(
            f"{entry['path']} is missing: the venv is incomplete; make it again with "
            f"`merlin-doctor setup --prefix {ctx.prefix} --only env`"
        )
    try:
        text = add_hooks(entry["text"])
    except ValueError as exc:
        raise StepError(f"cannot hook merlin-doctor into {entry['path']}: {exc}") from None
    write_file(ctx.prefix, entry["path"], text.encode("utf-8"), entry["path"].stat().st_mode & 0o777)


STEP = ActivationScripts()
