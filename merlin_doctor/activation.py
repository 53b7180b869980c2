"""The activate.d / deactivate.d scripts a recipe implies, as text (pure: no I/O).

The step that writes them and the check that judges them both use these functions,
so "stale" simply means "not what this version of the doctor would write".

Where they live depends on the env's kind:
- conda: `etc/conda/activate.d/merlin-doctor.sh` and `deactivate.d/...`, run by `conda
  activate` / `conda deactivate`; they refer to the env as "${CONDA_PREFIX}".
- venv: `etc/merlin-doctor/activate.sh` and `deactivate.sh`, run by two marked lines the
  activation step adds to the venv's own `bin/activate` (one at its end, one at the top of
  its `deactivate` function); they refer to the env as "${VIRTUAL_ENV}".
Either way a prefix with spaces or shell characters is never pasted into shell code;
every literal part of a value is single-quoted. What the scripts leave in the environment
is modelled by `activated.ActivatedEnv`, and a test holds the two together. Nothing else from a recipe
reaches the scripts: variable names are checked to be names (recipe.py rejects them when
it loads; `_name` here refuses again), and the recipe's name appears only in a comment,
with every control character escaped so it cannot end the comment line.
"""

from __future__ import annotations

import os
import re
import shlex
from typing import Dict, List, Mapping, Optional, Tuple

from merlin_doctor.activated import CONDA, PREFIX_VARIABLE, SAVED, VENV, WAS_UNSET
from merlin_doctor.recipe import EnvVar, Recipe

SCRIPT_NAME = "merlin-doctor.sh"
HEADER = "# Written by merlin-doctor"  # first words of both scripts: the step rewrites only files that start so
VENV_SCRIPT_DIR = "etc/merlin-doctor"
HOOK_MARK = "# merlin-doctor: runs etc/merlin-doctor/{0}.sh"
#: Where a venv's bin/activate runs our scripts: the line after `deactivate () {`, and the end.
DEACTIVATE_FUNCTION = re.compile(r"^deactivate\s*\(\)\s*\{\s*$", re.M)


def script_kind(recipe: Recipe, kind: Optional[str] = None) -> str:
    """The kind of env the scripts are for: the one asked, else the recipe's (a venv recipe's are venv scripts)."""
    return kind or (VENV if recipe.is_venv else CONDA)


def script_paths(kind: str, prefix: str) -> List[Tuple[str, str]]:
    """(`activate` | `deactivate`, path) of the env's two scripts, the undo first (it is written first)."""
    if kind == VENV:
        return [(which, f"{prefix}/{VENV_SCRIPT_DIR}/{which}.sh") for which in ("deactivate", "activate")]
    return [(which, f"{prefix}/etc/conda/{which}.d/{SCRIPT_NAME}") for which in ("deactivate", "activate")]


def hook_line(which: str) -> str:
    """The line bin/activate carries to run one of our scripts (guarded: a missing script is no error)."""
    script = f'"${{VIRTUAL_ENV}}/{VENV_SCRIPT_DIR}/{which}.sh"'
    return f'if [ -n "${{VIRTUAL_ENV:-}}" ] && [ -f {script} ]; then . {script}; fi  {HOOK_MARK.format(which)}'


def hooked(activate_text: str) -> Dict[str, bool]:
    """Whether a venv's bin/activate text runs each of our scripts."""
    return {which: hook_line(which) in activate_text for which in ("activate", "deactivate")}


def add_hooks(activate_text: str) -> str:
    """bin/activate with our two lines; raises ValueError when it has no `deactivate ()` function."""
    text = activate_text
    state = hooked(text)
    if not state["deactivate"]:
        match = DEACTIVATE_FUNCTION.search(text)
        if not match:
            raise ValueError("it has no `deactivate () {` function to hook into")
        text = text[: match.end()] + "\n    " + hook_line("deactivate") + text[match.end() :]
    if not state["activate"]:
        text = text.rstrip("\n") + "\n" + hook_line("activate") + "\n"
    return text


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


def activate_script(recipe: Recipe, kind: Optional[str] = None) -> str:
    kind = script_kind(recipe, kind)
    undo = "deactivate.sh" if kind == VENV else "deactivate.d/merlin-doctor.sh"
    lines = [
        f"{HEADER} for recipe {_comment(recipe.name)}; `merlin-doctor fix` rewrites it.",
        f"# Saves what it changes so {undo} restores it exactly.",
    ]
    for var in recipe.activate:
        n = _name(var)
        lines += [
            f'if [ -n "${{{n}+x}}" ]; then export {SAVED}{n}="${{{n}}}"; unset {WAS_UNSET}{n}; '
            f"else export {WAS_UNSET}{n}=1; fi",
            f"export {n}={_new_value(recipe, var, kind)}",
        ]
    return "\n".join(lines) + "\n"


def deactivate_script(recipe: Recipe, kind: Optional[str] = None) -> str:
    """Restores what the activate script saved. A venv's runs also when nothing was activated
    (bin/activate calls `deactivate nondestructive` first), so it restores only what was saved."""
    venv = script_kind(recipe, kind) == VENV
    undoes = "activate.sh" if venv else "activate.d/merlin-doctor.sh"
    lines = [f"{HEADER} for recipe {_comment(recipe.name)}: undoes {undoes}."]
    for var in recipe.activate:
        n = _name(var)
        restore = f'elif [ -n "${{{SAVED}{n}+x}}" ]; then' if venv else "else"
        lines += [
            f'if [ -n "${{{WAS_UNSET}{n}+x}}" ]; then unset {n}; {restore} export {n}="${{{SAVED}{n}}}"; fi',
            f"unset {SAVED}{n} {WAS_UNSET}{n}",
        ]
    return "\n".join(lines) + "\n"


def activate_command(kind: str, prefix: str, name: Optional[str] = None, has_conda: bool = True) -> str:
    """How a user activates the env setup built, in words that work on this machine: a venv's
    bin/activate; `conda activate` only where there is a conda to run it, else what it would do
    (set CONDA_PREFIX and PATH, then run our activate.d script)."""
    where = shlex.quote(prefix)
    if kind == VENV:
        return f"source {where}/bin/activate"
    if has_conda:
        return f"conda activate {shlex.quote(name) if name else where}"
    return (
        f'export CONDA_PREFIX={where} PATH={where}/bin:"$PATH" && . {where}/etc/conda/activate.d/{SCRIPT_NAME}'
        "  # no conda on this machine: this is what `conda activate` would do"
    )


def active_env(environ: Mapping[str, str], running_prefix: str) -> Tuple[Optional[str], Optional[str]]:
    """(prefix, kind) of the activated env: VIRTUAL_ENV (venv) or CONDA_PREFIX (conda). With both
    set (a venv made from a conda Python, or a venv's shell that ran `conda activate`), the one
    the running Python belongs to, else conda's."""
    venv, conda = environ.get("VIRTUAL_ENV"), environ.get("CONDA_PREFIX")
    if venv and (not conda or os.path.realpath(venv) == os.path.realpath(running_prefix)):
        return venv, VENV
    return (conda, CONDA) if conda else (None, None)
