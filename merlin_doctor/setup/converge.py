"""Run steps against one env: plan, confirm, apply under a lock, log everything.

`merlin-doctor setup` runs every step; `merlin-doctor fix` runs the ones failing verdicts
name. Both come here. Nothing in this module prints: it reports through a `SetupListener`
(`setup/output.py` shows it), so the same run can be shown as text or JSON.

Safety: the base env is never touched; a directory that is not a conda env is refused
before anything runs; one run at a time per env (`PREFIX.merlin-doctor.lock`, with the
holder's PID beside it in `PREFIX.merlin-doctor.pid`); everything run and changed goes to
a log file (`--log FILE`, else under `$XDG_STATE_HOME/merlin-doctor/logs/`).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, TextIO, Tuple

from merlin_doctor.atomic import named
from merlin_doctor.contained import OutsideEnv
from merlin_doctor.errors import InputError, os_error_line
from merlin_doctor.recipe import Recipe
from merlin_doctor.redact import mask_credentials
from merlin_doctor.setup.engines import (
    Engine,
    EngineError,
    EngineUnavailable,
    make_engine,
    prefix_for_name,
    prefix_state,
    select_engine,
)
from merlin_doctor.setup.engines.venv import VenvEngine, venv_state
from merlin_doctor.setup.steps import (
    Step,
    StepContext,
    StepError,
    all_steps,
    pause_point,
)
from merlin_doctor.verdict import Status

#: How long a second run waits for the lock before it gives up and says who holds it.
LOCK_WAIT_S = 3.0
BASE_MARKERS = ("condabin", "envs")  # what only a conda installation's root prefix holds


class Busy(Exception):
    """Another run holds the env's lock; the message names the lock and its holder."""


# --- where: the engine and the prefix ---------------------------------------------------


def resolve_engine(
    name: str, recipe: Optional[Recipe] = None, python: Optional[str] = None
) -> Tuple[Engine, Optional[str]]:
    """The engine `name` picks (a venv recipe's is always the venv engine, with `--python`
    or a Python of its version found here), and why it cannot run here (None when it can).

    An engine that cannot run still names envs and shows its commands, so a dry run (or
    a run that creates nothing) works on a machine without it.
    """
    if recipe is not None and recipe.is_venv:
        venv = VenvEngine(recipe.python_version or "3", python)
        return venv, None if venv.available() else venv.missing_reason()
    if python:
        raise InputError(
            f"--python is for recipes of kind venv; {recipe.name if recipe else 'this recipe'} "
            "is a conda env, whose Python the recipe's conda part pins"
        )
    try:
        return select_engine(name), None
    except ValueError as exc:
        raise InputError(str(exc)) from None
    except EngineUnavailable as exc:
        return make_engine("rattler" if name == "auto" else name), str(exc)


def resolve_prefix(recipe: Recipe, engine: Engine, name: Optional[str], prefix: Optional[str]) -> Path:
    """`--prefix DIR`, else the named env (`--name`, else the recipe's env_name) in the engine's envs dir."""
    if name and prefix:
        raise InputError("give --name or --prefix, not both")
    if prefix:
        return Path(os.path.abspath(os.path.expanduser(prefix)))
    env_name = name or recipe.env_name or recipe.name
    try:
        return prefix_for_name(engine, env_name)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    except EngineError as exc:
        raise InputError(f"cannot tell where {engine.name} keeps named envs ({exc}); give --prefix DIR") from None


def check_prefix(prefix: Path, creates: bool, kind: str = "conda") -> None:
    """Refuse a base env always, and a directory that is not an env of `kind` (a conda env,
    or a venv) unless the run creates one."""
    base = [m for m in BASE_MARKERS if (prefix / m).is_dir()]
    if base:
        raise InputError(
            f"{prefix} is a conda installation's base env (it holds {base[0]}/); merlin-doctor "
            "never changes base: give --name NAME or --prefix DIR for an env of its own"
        )
    state = venv_state(prefix) if kind == "venv" else prefix_state(prefix)
    what = "a venv (no pyvenv.cfg)" if kind == "venv" else "a conda env (no conda-meta/)"
    if state == "foreign":
        raise InputError(
            f"{prefix} exists and is not {what}; refusing to change it: "
            "choose another --prefix, or move it away yourself"
        )
    if not creates and state != "env":
        raise InputError(
            f"{prefix} is not {what.split(' (')[0]} ({state}); create it with `merlin-doctor setup --prefix {prefix}`"
        )


# --- one run at a time, and a log of everything ----------------------------------------


def _holder_path(prefix: Path) -> Path:
    return Path(f"{os.path.realpath(prefix)}.merlin-doctor.pid")


def lock_path(prefix: Path) -> Path:
    """Keyed by the env's real path: a second run through a symlink to the prefix waits too."""
    return Path(f"{os.path.realpath(prefix)}.merlin-doctor.lock")


def _describe_holder(prefix: Path) -> str:
    try:
        info = json.loads(_holder_path(prefix).read_text(encoding="utf-8"))
        return f"PID {info['pid']} (`{info['command']}`, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that recorded no PID"


@contextlib.contextmanager
def hold_lock(prefix: Path, command: str, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold the env's lock (an OS lock: a killed holder releases it with its process)."""
    import filelock

    from merlin_doctor.facts import write_json_atomic

    lock = filelock.FileLock(str(lock_path(prefix)), timeout=wait_s)
    try:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except filelock.Timeout:  # before OSError: Timeout is a TimeoutError
        raise Busy(
            f"another merlin-doctor run is changing {prefix}: {_describe_holder(prefix)} holds the lock "
            f"{lock_path(prefix)} (waited {wait_s:g} s). Run again when it has finished; if that "
            "process is gone, just run again (its lock went with it)."
        ) from None
    except OSError as exc:
        raise InputError(
            f"cannot write beside the env ({exc.strerror}: {exc.filename}); merlin-doctor never "
            "needs root: choose a --prefix or --name you can write"
        ) from None
    holder = _holder_path(prefix)
    try:
        with contextlib.suppress(OSError):  # the holder's PID is a courtesy: a full disk must not stop the run
            write_json_atomic(str(holder), {"pid": os.getpid(), "command": command, "since": _now()})
        yield
    finally:
        with contextlib.suppress(OSError):
            holder.unlink()
        lock.release()


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def default_log_path(command: str) -> Path:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(state, "merlin-doctor", "logs", f"{command.split()[-1]}-{stamp}-{os.getpid()}.log")


class Log:
    """Appends timestamped lines (never truncates: `--log` may name an existing file).

    Credentials in URLs and channel tokens are masked: the log shows the commands run, and
    it is the file people attach to a bug report. A log that cannot be written (a full
    disk, a read-only directory) stops the run with an OSError naming it: nothing changes
    unrecorded.
    """

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh: TextIO = open(  # noqa: SIM115 - the log stays open for the whole run, closed by close()
                path,
                "a",
                encoding="utf-8",
                errors="backslashreplace",  # noqa: SIM115
                buffering=1,
            )  # open for the whole run, closed by close()
        except OSError as exc:
            raise named(exc, str(path)) from None

    def write(self, line: str) -> None:
        try:
            self._fh.write(f"{_now()} {mask_credentials(line)}\n")
        except OSError as exc:
            raise named(exc, str(self.path)) from None

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError as exc:
            raise named(exc, str(self.path)) from None


# --- plan and apply ----------------------------------------------------------------------


@dataclass
class PlannedStep:
    step: Step
    done: bool
    actions: List[str] = field(default_factory=list)
    needed: bool = True  # False: the recipe asks nothing of this step (done, trivially)


@dataclass
class StepOutcome:
    id: str
    status: Status
    summary: str
    applied: bool = False
    changes: List[str] = field(default_factory=list)
    duration_s: float = 0.0

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "status": self.status.value,
            "summary": self.summary,
            "applied": self.applied,
            "changes": self.changes,
            "duration_s": round(self.duration_s, 3),
        }


class SetupListener:
    """What a run tells its user; the default says nothing (library use, tests)."""

    def plan(self, ctx: StepContext, planned: List[PlannedStep]) -> None: ...
    def step_started(self, step: Step, index: int, total: int) -> None: ...
    def progress(self, line: str) -> None: ...
    def change(self, line: str) -> None: ...
    def outcome(self, outcome: StepOutcome) -> None: ...
    def confirm(self) -> bool:
        return False


def select_steps(only: Sequence[str], allowed: Optional[Sequence[str]] = None) -> List[Step]:
    """The steps to run, in their fixed order: `allowed` (default all) narrowed by --only."""
    steps = all_steps()
    known = [s.id for s in steps]
    for name in only:
        if name not in known:
            raise InputError(f"unknown step {name!r}; the steps are: {', '.join(known)}")
    return [s for s in steps if (allowed is None or s.id in allowed) and (not only or s.id in only)]


def make_plan(ctx: StepContext, steps: Sequence[Step]) -> List[PlannedStep]:
    """Each step, done or with its actions. A step after one that will run is planned too
    when that one can change its state (`after`): links wait for the pip groups' files."""
    planned, pending = [], set()
    for step in steps:
        if not step.in_recipe(ctx.recipe):
            planned.append(PlannedStep(step, True, needed=False))
            continue
        todo = any(dep in pending for dep in step.after) or not step.is_done(ctx)
        if todo:
            pending.add(step.id)
        actions = [mask_credentials(a) for a in step.plan(ctx)] if todo else []
        planned.append(PlannedStep(step, not todo, actions))
    return planned


def apply_plan(
    ctx: StepContext, planned: List[PlannedStep], reporter: SetupListener, log: Callable[[str], None]
) -> List[StepOutcome]:
    """Apply the steps not done, in order, re-checking each first; stop at the first failure."""
    outcomes: List[StepOutcome] = []
    todo = [p for p in planned if not p.done]
    failed = False
    for p in planned:
        step = p.step
        if failed:
            outcomes.append(StepOutcome(step.id, Status.SKIP, "not run: an earlier step failed"))
            reporter.outcome(outcomes[-1])
            continue
        if not p.needed:
            outcomes.append(StepOutcome(step.id, Status.PASS, f"not needed: recipe {ctx.recipe.name} has no {step.id}"))
            continue
        if p.done or step.is_done(ctx):
            outcomes.append(StepOutcome(step.id, Status.PASS, "already done"))
            continue
        reporter.step_started(step, todo.index(p) + 1, len(todo))
        log(f"== {step.id}: {step.title}")
        changes: List[str] = []

        def record(line: str, changes: List[str] = changes) -> None:  # this step's list, bound now
            line = mask_credentials(line)
            changes.append(line)
            log(line)
            reporter.change(line)

        def progress(line: str) -> None:
            line = mask_credentials(line)
            log(f"   {line}")
            reporter.progress(line)

        ctx.log = record
        started = time.perf_counter()
        try:
            warnings = step.apply(ctx, progress)
        except (StepError, EngineError, OutsideEnv) as exc:
            outcome = StepOutcome(step.id, Status.FAIL, mask_credentials(str(exc)), True, changes)
            failed = True
        except OSError as exc:  # a read-only env, a full disk: the file and the errno's meaning
            outcome = StepOutcome(step.id, Status.FAIL, f"cannot change the env: {os_error_line(exc)}", True, changes)
            failed = True
        else:
            if warnings:
                outcome = StepOutcome(step.id, Status.WARN, mask_credentials("; ".join(warnings)), True, changes)
            elif step.is_done(ctx):
                outcome = StepOutcome(step.id, Status.PASS, f"done ({len(changes)} change(s))", True, changes)
            else:
                outcome = StepOutcome(
                    step.id, Status.FAIL, "applied, but the env still does not match the recipe", True, changes
                )
                failed = True
        outcome.duration_s = time.perf_counter() - started
        log(f"== {step.id}: {outcome.status.value}: {outcome.summary}")
        reporter.outcome(outcome)
        outcomes.append(outcome)
        pause_point(step.id)
    return outcomes


@dataclass
class RunResult:
    planned: List[PlannedStep]
    outcomes: List[StepOutcome] = field(default_factory=list)
    log_path: Optional[Path] = None
    declined: bool = False

    @property
    def exit_code(self) -> int:
        return 1 if self.declined or any(o.status is Status.FAIL for o in self.outcomes) else 0


def run(
    ctx: StepContext,
    steps: Sequence[Step],
    reporter: SetupListener,
    command: str,
    assume_yes: bool,
    interactive: bool,
    log_path: Optional[Path] = None,
) -> RunResult:
    """Plan (holding the env's lock, unless a dry run), confirm, apply and log."""
    if ctx.dry_run:
        planned = make_plan(ctx, steps)
        reporter.plan(ctx, planned)
        return RunResult(planned)
    with hold_lock(ctx.prefix, command):
        planned = make_plan(ctx, steps)
        reporter.plan(ctx, planned)
        if all(p.done for p in planned) and log_path is None:
            return RunResult(planned)
        if not all(p.done for p in planned) and not assume_yes:
            if not interactive:
                raise InputError(
                    "not a terminal and no --yes, so nothing was changed: rerun with --yes to apply "
                    "this plan (or --dry-run to only see it)"
                )
            if not reporter.confirm():
                return RunResult(planned, declined=True)
        log = Log(log_path or default_log_path(command))
        try:
            log.write(
                f"{command}: recipe {ctx.recipe.name} ({ctx.recipe.path}), prefix {ctx.prefix}, "
                f"engine {ctx.engine.name}, force={ctx.force}"
            )
            for p in planned:
                log.write(f"plan {p.step.id}: " + ("done" if p.done else " | ".join(p.actions) or "check again"))
            outcomes = apply_plan(ctx, planned, reporter, log.write)
        finally:
            log.close()
        return RunResult(planned, outcomes, log.path)
