"""The activate.d / deactivate.d scripts a recipe implies, as text (pure: no I/O).

The step that writes them and the check that judges them both use these functions,
so "stale" simply means "not what this version of the doctor would write".

The scripts refer to the env as "${CONDA_PREFIX}" (set by `conda activate` before it
sources activate.d; "${VIRTUAL_ENV}" in a venv), so a prefix with spaces or shell
characters is never pasted into shell code; every literal part of a value is
single-quoted. What the scripts leave in the environment is modelled by
`activated.ActivatedEnv`, and a test holds the two together. Nothing else from a recipe
reaches the scripts: variable names are checked to be names (recipe.py rejects them when
it loads; `_name` here refuses again), and the recipe's name appears only in a comment,
with every control character escaped so it cannot end the comment line.
"""
from __future__ import annotations

import re

from merlin_doctor.activated import CONDA, PREFIX_VARIABLE, SAVED, WAS_UNSET
from merlin_doctor.recipe import EnvVar, Recipe

SCRIPT_NAME = "merlin-doctor.sh"
HEADER = "# Written by merlin-doctor"  # first words of both scripts: the step rewrites only files that start so


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _name(var: EnvVar) -> str:
    """A variable's name, safe to write bare into shell code (or ValueError)."""
    if not _NAME.fullmatch(var.name):
        raise ValueError(f"not a shell variable name: {var.name!r}")
    return var.name


def _comment(text: str) -> str:
    """Text for a `#` comment: control characters (a newline ends a comment) escaped."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'" if text else ""


def shell_value(recipe: Recipe, template: str, kind: str = CONDA) -> str:
    """A recipe template as a shell word: placeholders expand, literals are quoted."""
    template = template.replace("{site_packages}", recipe.site_packages("{prefix}"))
    parts = re.split(r"(\{prefix\})", template)
    prefix = f'"${{{PREFIX_VARIABLE[kind]}}}"'
    return "".join(prefix if p == "{prefix}" else shell_quote(p) for p in parts if p)


def _new_value(recipe: Recipe, var: EnvVar, kind: str) -> str:
    """`set` replaces; `prepend`/`append` keep the old value between, without stray colons."""
    if var.set is not None:
        return shell_value(recipe, var.set, kind)
    before = ":".join(shell_value(recipe, p, kind) for p in var.prepend)
    after = ":".join(shell_value(recipe, p, kind) for p in var.append)
    n = _name(var)
    if before and after:
        return f'{before}"${{{n}:+:${{{n}}}}}":{after}'
    if before:
        return f'{before}"${{{n}:+:${{{n}}}}}"'
    return f'"${{{n}:+${{{n}}}:}}"{after}'


def activate_script(recipe: Recipe, kind: str = CONDA) -> str:
    lines = [
        f"{HEADER} for recipe {_comment(recipe.name)}; `merlin-doctor fix` rewrites it.",
        "# Saves what it changes so deactivate.d/merlin-doctor.sh restores it exactly.",
    ]
    for var in recipe.activate:
        n = _name(var)
        lines += [
            f'if [ -n "${{{n}+x}}" ]; then export {SAVED}{n}="${{{n}}}"; unset {WAS_UNSET}{n}; '
            f"else export {WAS_UNSET}{n}=1; fi",
            f"export {n}={_new_value(recipe, var, kind)}",
        ]
    return "\n".join(lines) + "\n"


def deactivate_script(recipe: Recipe) -> str:
    lines = [f"{HEADER} for recipe {_comment(recipe.name)}: undoes activate.d/merlin-doctor.sh."]
    for var in recipe.activate:
        n = _name(var)
        lines += [
            f'if [ -n "${{{WAS_UNSET}{n}+x}}" ]; then unset {n}; else export {n}="${{{SAVED}{n}}}"; fi',
            f"unset {SAVED}{n} {WAS_UNSET}{n}",
        ]
    return "\n".join(lines) + "\n"
