"""Human and JSON output for `setup` and `fix`: the plan, progress, outcomes, what changed.

The plan and outcomes go to stdout; progress (engine and pip lines, files changed) to
stderr, silenced by -q. With --json, stdout holds one JSON document and nothing else.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional, TextIO

import click

from merlin_doctor.render import (
    ASCII,
    COLOURS,
    SYMBOLS,
    _can_encode,
    safe_text,
    use_colour,
)
from merlin_doctor.setup.converge import (
    PlannedStep,
    RunResult,
    SetupListener,
    StepOutcome,
)
from merlin_doctor.setup.steps import STEP_IDS, Step, StepContext
from merlin_doctor.verdict import Status, Verdict

JSON_SCHEMA_VERSION = 1


class SetupTerminal(SetupListener):
    def __init__(
        self,
        command: str,
        quiet: bool = False,
        out: Optional[TextIO] = None,
        err: Optional[TextIO] = None,
        silent: bool = False,
    ):
        self.command, self.quiet, self.silent = command, quiet, silent  # silent: --json owns stdout
        self.out, self.err = out or sys.stdout, err or sys.stderr  # looked up now: a caller may have redirected them
        self.colour = use_colour(self.out)
        self.symbols = SYMBOLS if _can_encode(self.out, "✓✗") else ASCII
        self.bullets = ("…", "→") if _can_encode(self.err, "…→") else ("...", "->")  # progress, change

    def _say(self, text: str = "") -> None:
        if not self.silent:
            self.out.write(text + "\n")
            self.out.flush()

    def _note(self, text: str) -> None:
        if not self.quiet:
            self.err.write(text + "\n")
            self.err.flush()

    def mark(self, status: Status) -> str:
        text = f"[{self.symbols[status]}]"
        return f"\x1b[{COLOURS[status]}m{text}\x1b[0m" if self.colour and not self.silent else text

    def target(self, ctx: StepContext, notes: List[str]) -> None:
        engine = ctx.engine
        exe = getattr(engine, "exe", None)
        how = "embedded, no conda needed" if engine.name == "rattler" else (exe or "not found here")
        self._say(f"{self.command}: recipe {ctx.recipe.name} -> {ctx.prefix}")
        self._say(f"engine: {engine.name} ({how})")
        for note in notes:
            self._say("note: " + note.replace("\n", "\n      "))

    def found(self, verdicts: List[Verdict]) -> None:
        """`fix`: the problems found, each with the step that repairs it."""
        problems = [v for v in verdicts if v.step]
        if problems:
            self._say("\nFound:")
        for v in problems:
            self._say(f"  {self.mark(v.status)} {v.id:<22} {safe_text(v.summary)}  (step {v.step})")

    def plan(self, ctx: StepContext, planned: List[PlannedStep]) -> None:
        todo = [p for p in planned if not p.done]
        if not planned:
            self._say("\nNothing to repair: every check that names a repair step passes.")
            return
        if not todo:
            self._say(
                f"\nNothing to do: {ctx.prefix} already matches recipe {ctx.recipe.name} "
                f"({', '.join(p.step.id for p in planned)} checked)."
            )
            return
        self._say("\nPlan" + (" (dry run: nothing will be changed):" if ctx.dry_run else ":"))
        for p in planned:
            if not p.needed:
                self._say(f"  {p.step.id:<11} not needed: recipe {ctx.recipe.name} has no {p.step.id}")
                continue
            if p.done:
                self._say(f"  {p.step.id:<11} already done")
                continue
            self._say(f"  {p.step.id:<11} {p.step.title}")
            for action in p.actions or ["(check again once the steps above have run)"]:
                self._say(f"      {action}")

    def confirm(self) -> bool:
        return click.confirm("\nApply this plan?", default=False, err=True)

    def step_started(self, step: Step, index: int, total: int) -> None:
        self._note(f"[{index}/{total}] {step.id}: {step.title} ...")

    def progress(self, line: str) -> None:
        self._note(f"  {self.bullets[0]} {safe_text(line)}")

    def change(self, line: str) -> None:
        self._note(f"  {self.bullets[1]} {safe_text(line)}")

    def outcome(self, outcome: StepOutcome) -> None:
        self._say(
            f"{self.mark(outcome.status)} {outcome.id:<11} {safe_text(outcome.summary)} ({outcome.duration_s:.1f} s)"
        )

    def finish(self, ctx: StepContext, result: RunResult, next_hint: Optional[str]) -> None:
        if ctx.dry_run:
            if any(not p.done for p in result.planned):
                self._say(
                    "\nDry run: nothing was changed. Run again without --dry-run to apply it "
                    "(--yes skips the question)."
                )
            return
        if result.declined:
            self._say("Nothing was changed.")
            return
        failed = [o for o in result.outcomes if o.status is Status.FAIL]
        warned = [o for o in result.outcomes if o.status is Status.WARN]
        if failed:
            self._say(
                f"\nStep {failed[0].id} failed, so {ctx.prefix} is not finished; fix the cause and run "
                "again: done steps are skipped."
            )
        elif result.outcomes:
            ran = [o.id for o in result.outcomes if o.applied]
            whole = len(result.planned) == len(STEP_IDS)  # every step judged, not --only or fix's few
            done = (
                f"{ctx.prefix} matches recipe {ctx.recipe.name}"
                if whole
                else f"Done: {', '.join(ran) or 'nothing'} applied to {ctx.prefix}"
            )
            self._say("\n" + done + (f", with {len(warned)} warning(s) above." if warned else "."))
        if result.log_path:
            self._say(f"Log: {result.log_path}")
        if next_hint and not failed:
            self._say(f"Next: {next_hint}")

    def changes(self, before: List[Verdict], after: List[Verdict]) -> None:
        """`fix`: each verdict that was a problem before, with what it is now."""
        now = {v.id: v for v in after}
        rows = [(b, now[b.id]) for b in before if b.status in (Status.FAIL, Status.WARN, Status.ERROR) and b.id in now]
        if not rows:
            return
        self._say("\nRe-checked:")
        for b, a in rows:
            arrow = f"{self.mark(b.status)}->{self.mark(a.status)}"
            self._say(f"  {arrow} {a.id:<22} {safe_text(a.summary)}")


def setup_document(
    command: str,
    ctx: StepContext,
    result: RunResult,
    notes: List[str],
    before: Optional[List[Verdict]] = None,
    after: Optional[List[Verdict]] = None,
) -> Dict[str, Any]:
    """The --json document of `setup` and `fix` (shape in the README)."""
    data: Dict[str, Any] = {
        "schema_version": JSON_SCHEMA_VERSION,
        "command": command,
        "recipe": ctx.recipe.name,
        "prefix": str(ctx.prefix),
        "engine": ctx.engine.name,
        "notes": notes,
        "dry_run": ctx.dry_run,
        "plan": [
            {"id": p.step.id, "title": p.step.title, "done": p.done, "actions": p.actions} for p in result.planned
        ],
        "outcomes": [o.to_dict() for o in result.outcomes],
        "log": str(result.log_path) if result.log_path else None,
        "exit_code": result.exit_code,
    }
    if before is not None and after is not None:
        data["before"] = [v.to_dict() for v in before]
        data["after"] = [v.to_dict() for v in after]
    return data
