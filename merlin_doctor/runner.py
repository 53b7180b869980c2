"""Run checks over facts: selection, needs, skips, errors and timing. No I/O of its own."""

from __future__ import annotations

import time
import traceback
from typing import Any, Callable, Dict, Iterable, List, Optional

from merlin_doctor.checks import Check
from merlin_doctor.errors import InputError
from merlin_doctor.facts import Facts
from merlin_doctor.options import CheckOptions
from merlin_doctor.probes.registry import probe_named
from merlin_doctor.recipe import Recipe, fix_command
from merlin_doctor.verdict import Finding, Status, Verdict


def is_slow(check: Check) -> bool:
    return any(probe_named(p).slow for p in check.probes)


def matches(check: Check, selector: str) -> bool:
    """`gpu.driver` selects one check; `gpu` selects the whole area."""
    return check.id == selector or check.area == selector


def select_checks(checks: List[Check], only: Iterable[str] = (), skip: Iterable[str] = ()) -> List[Check]:
    """Apply --only/--skip (ids or areas); an unknown selector is a usage error."""
    only, skip = list(only), list(skip)
    for selector in only + skip:
        if not any(matches(c, selector) for c in checks):
            raise InputError(f"unknown check id {selector!r}; `merlin-doctor list` shows them all")
    skipped = {c.id for c in checks if any(matches(c, s) for s in skip)}
    wanted = {c.id for c in checks if (not only or any(matches(c, s) for s in only)) and c.id not in skipped}
    by_id = {c.id: c for c in checks}
    pending = list(wanted)
    while pending:  # what the chosen checks need runs too (unless --skip named it)
        for need in by_id[pending.pop()].needs:
            if need in by_id and need not in wanted and need not in skipped:
                wanted.add(need)
                pending.append(need)
    return _needs_first(sorted((c for c in checks if c.id in wanted), key=is_slow))  # stable: fast first, slow last


def _needs_first(checks: List[Check]) -> List[Check]:
    """The same checks, each after the ones it needs (otherwise in the given order), so a need
    is judged before its dependant whatever order the check modules were imported in."""
    by_id = {c.id: c for c in checks}
    ordered: List[Check] = []
    placed: set = set()

    def place(check: Check) -> None:
        if check.id in placed:
            return
        placed.add(check.id)
        for need in check.needs:
            if need in by_id:
                place(by_id[need])
        ordered.append(check)

    for check in checks:
        place(check)
    return ordered


class _FactsView:
    """The facts a check declared it reads; anything else is a bug in the check."""

    def __init__(self, facts: Facts, check: Check):
        self._facts, self._check = facts, check

    def __getitem__(self, name: str) -> Dict[str, Any]:
        if name not in self._check.probes + self._check.optional_probes:
            raise KeyError(f"check {self._check.id} reads probe {name!r} without declaring it")
        return self._facts[name]


def _skip_reason(check: Check, recipe: Recipe, options: CheckOptions, done: Dict[str, Verdict]) -> Optional[str]:
    if check.gpu and options.cpu_ok:
        return "GPU check skipped: --cpu-ok says this machine runs on the CPU"
    if check.gpu and recipe.gpu == "none":
        return f"GPU check skipped: recipe {recipe.name!r} expects no GPU"
    if options.fast and is_slow(check):
        return "skipped by --fast (it imports TensorFlow or trains)"
    for need in check.needs:
        verdict = done.get(need)
        if verdict is None:
            return f"skipped: it needs {need}, which was not run"
        if verdict.status not in (Status.PASS, Status.WARN):
            return f"skipped: it needs {need}, which did not pass ({verdict.status.value})"
    return None


def probes_to_run(checks: List[Check], recipe: Recipe, options: CheckOptions) -> List[str]:
    """The probes the checks will read, leaving out those of checks skipped by flags or recipe."""
    names: List[str] = []
    for check in checks:
        if _skip_reason(check, recipe, options, {}) is None:
            names += [p for p in check.probes + check.optional_probes if p not in names]
    return names


def _unusable_facts(check: Check, facts: Facts) -> Optional[Finding]:
    """A declared probe missing from a snapshot (skip) or whose code raised (error): the
    check would otherwise judge its defaults and say something confidently wrong."""
    for name in check.probes:
        data = facts[name]
        if data.get("missing"):
            return Finding(Status.SKIP, f"skipped: {data['error']}")
        if "traceback" in data and set(data) <= {"error", "traceback", "duration_s"}:
            return Finding(Status.ERROR, f"the {name} probe failed: {data['error']}", {"traceback": data["traceback"]})
    return None


def judge_check(check: Check, facts: Facts, recipe: Recipe, options: CheckOptions, done: Dict[str, Verdict]) -> Verdict:
    started = time.perf_counter()
    reason = _skip_reason(check, recipe, options, done)
    unusable = None if reason else _unusable_facts(check, facts)
    if reason:
        finding = Finding(Status.SKIP, reason)
    elif unusable:
        finding = unusable
    else:
        try:
            # --cpu-ok judges as a `gpu: none` recipe does: no GPU-only cause for a CPU machine.
            judged = recipe.on_cpu() if options.cpu_ok else recipe
            finding = check.function(_FactsView(facts, check), judged)
            if not isinstance(finding, Finding):
                raise TypeError(f"returned {type(finding).__name__}, not a Finding")
        except Exception as exc:  # a check that raises becomes an error verdict, never a dead run
            evidence = {"traceback": traceback.format_exc()} if options.debug else {}
            finding = Finding(Status.ERROR, f"the check itself failed: {type(exc).__name__}: {exc}", evidence)
    # A finding's step overrides the check's; "" says no step can repair this finding.
    step = (check.step if finding.step is None else finding.step) or None
    step = step if finding.status in (Status.FAIL, Status.WARN) else None
    fix = finding.fix or (fix_command(recipe, step) if step else None)
    return Verdict(
        check.id, finding.status, finding.summary, finding.evidence, fix, step, time.perf_counter() - started
    )


def run_checks(
    checks: List[Check],
    facts: Facts,
    recipe: Recipe,
    options: CheckOptions,
    on_verdict: Optional[Callable[[Verdict], None]] = None,
) -> List[Verdict]:
    done: Dict[str, Verdict] = {}
    for check in checks:
        verdict = judge_check(check, facts, recipe, options, done)
        done[check.id] = verdict
        if on_verdict:
            on_verdict(verdict)
    return list(done.values())


def exit_code(verdicts: List[Verdict], strict: bool = False) -> int:
    bad = {Status.FAIL, Status.ERROR} | ({Status.WARN} if strict else set())
    return 1 if any(v.status in bad for v in verdicts) else 0
