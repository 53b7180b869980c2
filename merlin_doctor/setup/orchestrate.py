"""`merlin-doctor setup` and `merlin-doctor fix`: from parsed options to a converged env.

setup runs every step (or --only ones) against the env the options name. fix judges
the current env (CONDA_PREFIX, or --prefix) with the checks that name a repair step,
runs the steps named by the failing or warning verdicts, then judges again and shows
each verdict before and after. `./setup_env` is `merlin-doctor setup`.

fix judges the env, not the shell it runs in: the probes see the variables the recipe's
activation scripts set (as after `conda activate`), so a fix is not undone by a stale
shell, and the probes that read the env's Python run with the env's own interpreter
(target.py), so the doctor need not be installed in it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from merlin_doctor.activation import activate_command, active_env
from merlin_doctor.envstate import env_kind
from merlin_doctor.errors import InputError
from merlin_doctor.names import STEP_IDS
from merlin_doctor.recipe import DEFAULT_RECIPE, Recipe, load_buildable_recipe
from merlin_doctor.setup.converge import (
    Busy,
    RunResult,
    check_prefix,
    resolve_engine,
    resolve_prefix,
    run,
    select_steps,
)
from merlin_doctor.setup.engines import Engine
from merlin_doctor.setup.output import SetupTerminal, setup_document
from merlin_doctor.setup.steps import Step, StepContext
from merlin_doctor.verdict import Status, Verdict


@dataclass
class Options:
    recipe: Optional[str] = None
    name: Optional[str] = None
    prefix: Optional[str] = None
    engine: str = "auto"
    python: Optional[str] = None
    dry_run: bool = False
    yes: bool = False
    force: bool = False
    only: List[str] = field(default_factory=list)
    log: Optional[str] = None
    quiet: bool = False
    as_json: bool = False


def _failure(message: str) -> int:
    sys.stderr.write(f"merlin-doctor: error: {message}\n")
    sys.stderr.flush()
    return 1


#: Set by ./setup_env when its real run would install py-rattler into its private Python.
SETUP_ENV_INSTALLS_RATTLER = "MERLIN_DOCTOR_SETUP_ENV_INSTALLS_RATTLER"


def _engine_note(
    engine, unusable: Optional[str], creates: bool, dry_run: bool, environ: Optional[Dict[str, str]] = None
) -> Optional[str]:
    """Said when the engine cannot run here but the run can go on (a plan, or no env step).

    Under ./setup_env a dry run says what the real run will do about py-rattler (install it
    in setup_env's private Python), not how to install it by hand.
    """
    if not unusable or not creates or not dry_run:
        return None
    if engine.name == "rattler" and (os.environ if environ is None else environ).get(SETUP_ENV_INSTALLS_RATTLER):
        unusable = (
            "rattler: py-rattler is not in this Python; ./setup_env installs it in its private Python "
            "when it runs for real (no conda, mamba or micromamba was found)"
        )
    return f"{unusable}\nthe plan shows what the {engine.name} engine would run"


def check_command(recipe: Recipe, opts: Options, prefix: Path) -> str:
    """The exact command that judges the env this run built, from wherever the doctor is installed."""
    where = f"--prefix {shlex.quote(str(prefix))}" if opts.prefix else f"--name {shlex.quote(prefix.name)}"
    chosen = "" if recipe.name == DEFAULT_RECIPE else f" --recipe {shlex.quote(opts.recipe or recipe.path)}"
    return f"merlin-doctor check {where}{chosen}"


def _next_hint(recipe: Recipe, opts: Options, prefix: Path, engine) -> str:
    """How to judge the env this run built, and how to enter it on this machine (its venv's
    bin/activate; `conda activate` only where there is a conda)."""
    name = None if opts.prefix else prefix.name
    enter = activate_command(recipe.kind, str(prefix), name, engine.name != "rattler")
    return f"{check_command(recipe, opts, prefix)}; to work in it: {enter}"


def setup(opts: Options) -> int:
    """Converge the env named by the options to the recipe; the exit code of the run."""
    command = "merlin-doctor setup"
    recipe = load_buildable_recipe(opts.recipe)
    steps = select_steps(opts.only)
    engine, unusable = resolve_engine(opts.engine, recipe, opts.python)
    prefix = resolve_prefix(recipe, engine, opts.name, opts.prefix)
    check_prefix(prefix, creates=_creates(steps), kind=recipe.kind)
    try:
        ctx, report, notes = _prepare(command, opts, recipe, prefix, engine, unusable, steps)
        result = _converge(ctx, steps, report, command, opts)
    except _CannotRun as exc:
        return _failure(str(exc))
    report.finish(ctx, result, _next_hint(recipe, opts, prefix, engine))
    if opts.as_json:
        print(json.dumps(setup_document(command, ctx, result, notes), indent=2))
    return result.exit_code


def fix(opts: Options) -> int:
    """Repair what the checks find wrong in the current env; the exit code of the run."""
    command = "merlin-doctor fix"
    recipe = load_buildable_recipe(opts.recipe)
    prefix = _fix_target(recipe, opts)
    kind = env_kind(str(prefix)) or recipe.kind
    check_prefix(prefix, creates=False, kind=kind)
    select_steps(opts.only)  # an unknown --only is a usage error even when nothing is wrong
    recipe, applicable = for_env_kind(recipe, kind)
    before = judge(recipe, prefix)
    named = [v.step for v in before if v.step and v.step in applicable]
    steps = select_steps(opts.only, allowed=named)
    engine, unusable = resolve_engine(opts.engine, recipe, opts.python)
    try:
        ctx, report, notes = _prepare(command, opts, recipe, prefix, engine, unusable, steps)
        report.found(before)
        result = _converge(ctx, steps, report, command, opts)
    except _CannotRun as exc:
        return _failure(str(exc))
    after = before if opts.dry_run or not result.outcomes else judge(recipe, prefix)
    report.finish(ctx, result, None)
    if any(o.applied for o in result.outcomes):  # "before -> after" only when something ran
        report.changes(before, after)
    if opts.as_json:
        print(json.dumps(setup_document(command, ctx, result, notes, before, after), indent=2, default=str))
    still = {v.id for v in after if v.step and v.status is Status.FAIL}
    return result.exit_code or (1 if still and not opts.dry_run else 0)


class _CannotRun(Exception):
    """The engine cannot create the env, or another run holds the lock: one line, exit 1."""


def _creates(steps: List[Step]) -> bool:
    return any(s.id == "env" for s in steps)


def _prepare(
    command: str,
    opts: Options,
    recipe: Recipe,
    prefix: Path,
    engine: Engine,
    unusable: Optional[str],
    steps: List[Step],
) -> Tuple[StepContext, SetupTerminal, List[str]]:
    """The step context and the terminal of a run, the run's notes shown; _CannotRun when the
    engine cannot create an env the run must create."""
    note = _engine_note(engine, unusable, _creates(steps), opts.dry_run)
    if unusable and _creates(steps) and not opts.dry_run:
        raise _CannotRun(unusable)
    ctx = StepContext(recipe, prefix, engine, force=opts.force, dry_run=opts.dry_run)
    report = SetupTerminal(command, quiet=opts.quiet, silent=opts.as_json)
    notes = [note] if note else []
    report.target(ctx, notes)
    return ctx, report, notes


def _converge(ctx: StepContext, steps: List[Step], report: SetupTerminal, command: str, opts: Options) -> RunResult:
    try:
        return run(ctx, steps, report, command, opts.yes, _interactive(opts), _log_path(opts))
    except Busy as exc:
        raise _CannotRun(str(exc)) from None


def _fix_target(recipe: Recipe, opts: Options) -> Path:
    """--prefix, else --name, else the active venv or conda env."""
    if opts.prefix or opts.name:
        engine = resolve_engine(opts.engine, recipe, opts.python)[0]
        return resolve_prefix(recipe, engine, opts.name, opts.prefix)
    active = active_env(os.environ, sys.prefix)[0]
    if not active:
        raise InputError(
            "not inside an env: activate it first (conda activate NAME, or source DIR/bin/activate) "
            "or give --prefix DIR or --name ENV"
        )
    return Path(os.path.abspath(active))


def for_env_kind(recipe: Recipe, kind: str) -> Tuple[Recipe, Tuple[str, ...]]:
    """The recipe as it applies to an env of `kind`, and the steps that apply there: a conda
    recipe's pip groups, links and variables apply to a venv too (its variables through the
    venv's bin/activate), its conda packages and copies from them do not."""
    if recipe.kind == kind:
        return recipe, STEP_IDS
    return dataclasses.replace(recipe, kind=kind, venv_python=recipe.python_version), ("pip", "links", "activation")


def judge(recipe: Recipe, prefix: Path) -> List[Verdict]:
    """The verdicts of every check that names a repair step (and of the checks they need), for
    the env at `prefix` as activated, its Python's probes run with its own interpreter."""
    from merlin_doctor.checks import all_checks
    from merlin_doctor.facts import Facts
    from merlin_doctor.options import CheckOptions
    from merlin_doctor.runner import run_checks, select_checks
    from merlin_doctor.target import probe_context

    checks = all_checks()
    repairable = select_checks(checks, only=[c.id for c in checks if c.step])
    facts = Facts.live(probe_context(recipe, str(prefix), None, timeout=30.0))
    return run_checks(repairable, facts, recipe, CheckOptions(fast=True))


def _interactive(opts: Options) -> bool:
    return sys.stdin.isatty() and not opts.as_json


def _log_path(opts: Options) -> Optional[Path]:
    return Path(os.path.abspath(os.path.expanduser(opts.log))) if opts.log else None
