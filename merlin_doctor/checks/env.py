"""Env checks: the recipe's links and copies are in place in the env (VIRTUAL_ENV or CONDA_PREFIX).

These judge recipe conformance, with or without a GPU: `cuda.*` judges what the loader
finds, these judge what `merlin-doctor setup` should have made (and `fix` remakes).
"""

from __future__ import annotations

import shlex
from typing import Optional, Tuple

from merlin_doctor.checks import FactsView, check
from merlin_doctor.envstate import SETTLED_LINKS
from merlin_doctor.recipe import Recipe, fix_command
from merlin_doctor.verdict import Finding, failed, listed, passed, skipped

NOT_IN_ENV = "not inside an env (neither VIRTUAL_ENV nor CONDA_PREFIX is set): no env to judge"
IN_THE_WAY = ("file", "elsewhere", "differs")


def _entries(facts, recipe, key: str) -> Tuple[list, Optional[Finding]]:
    """The recipe's `links` or `copies` as found in the env, or the finding when there are none to judge."""
    data = facts["recipe_files"]
    if not data.get("prefix"):
        return [], skipped(NOT_IN_ENV)
    entries = data.get(key, [])
    return entries, None if entries else passed(f"recipe {recipe.name} makes no {key}")


def _fix(recipe: Recipe, step: str, entries: list) -> str:
    """`--force` only when something not made by the doctor is in the way."""
    return fix_command(recipe, step, force=any(e["state"] in IN_THE_WAY for e in entries))


@check("env.links", probes=["recipe_files"], step="links")
def links_in_place(facts: FactsView, recipe: Recipe) -> Finding:
    """The recipe's symlinks are in the env (TensorRT's .so.7 names for its .so.8 libraries)."""
    entries, nothing = _entries(facts, recipe, "links")
    if nothing:
        return nothing
    bad = [e for e in entries if e["state"] not in SETTLED_LINKS]
    if bad:
        named = listed([f"{e['path']} ({e['state']})" for e in bad], 3)
        return failed(
            f"{len(bad)} of the recipe's links missing or wrong: {named}",
            fix=_fix(recipe, "links", bad),
            evidence={"links": bad},
        )
    absent = [e["path"] for e in entries if e["state"] == "no-target"]
    note = f"; {len(absent)} not made because their target is not installed" if absent else ""
    return passed(f"{len(entries) - len(absent)} link(s) in place{note}", evidence={"links": entries})


@check("env.copies", probes=["recipe_files"], step="copies")
def copies_in_place(facts: FactsView, recipe: Recipe) -> Finding:
    """The recipe's copies in the env match their sources by sha256 (libdevice where XLA looks)."""
    entries, nothing = _entries(facts, recipe, "copies")
    if nothing:
        return nothing
    bad = [e for e in entries if e["state"] != "ok"]
    if bad:
        first = bad[0]
        prefix = facts["recipe_files"]["prefix"]
        fix = (
            f"merlin-doctor setup --prefix {shlex.quote(prefix)} --only env"
            if first["state"] == "no-source"
            else _fix(recipe, "copies", bad)
        )
        return failed(
            f"{len(bad)} copy(ies) missing or stale: {first['to']} ({first['state']})",
            fix=fix,
            evidence={"copies": bad},
        )
    return passed(f"{len(entries)} copy(ies) match their sources", evidence={"copies": [e["to"] for e in entries]})
