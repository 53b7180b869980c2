"""Run checks over facts: selection, needs, skips, errors and timing. No I/O of its own."""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional

from merlin_doctor.checks import Check
from merlin_doctor.errors import InputError
from merlin_doctor.facts import Facts
from merlin_doctor.probes import probe_named
from merlin_doctor.recipe import Recipe
from merlin_doctor.verdict import Finding, Status, Verdict


@dataclass
class RunOptions:
    only: List[str] = field(default_factory=list)
    skip: List[str] = field(default_factory=list)
    fast: bool = False
    cpu_ok: bool = False
    debug: bool = False


def is_slow(check: Check) -> bool:
    return any(probe_named(p).slow for p in check.probes)


def _matches(check: Check, selector: str) -> bool:
    """`gpu.driver` selects one check; `gpu` selects the whole area."""
    return check.id == selector or check.area == selector


def select_checks(checks: List[Check], only: Iterable[str] = (), skip: Iterable[str] = ()) -> List[Check]:
    """Apply --only/--skip (ids or areas); an unknown selector is a usage error."""
    only, skip = list(only), list(skip)
    for selector in only + skip:
        if not any(_matches(c, selector) for c in checks):
            raise InputError(f"unknown check id {selector!r}; `merlin-doctor list` shows them all")
    chosen = [c for c in checks if (not only or any(_matches(c, s) for s in only))
              and not any(_matches(c, s) for s in skip)]
    return sorted(chosen, key=is_slow)  # stable: fast checks first, slow ones last


class _FactsView:
    """The facts a check declared it reads; anything else is a bug in the check."""

    def __init__(self, facts: Facts, check: Check):
        self._facts, self._check = facts, check

    def __getitem__(self, name: str) -> Dict[str, Any]:
        if name not in self._check.probes:
            raise KeyError(f"check {self._check.id} reads probe {name!r} without declaring it")
        return self._facts[name]


def _skip_reason(check: Check, recipe: Recipe, options: RunOptions, done: Dict[str, Verdict]) -> Optional[str]:
    if check.gpu and options.cpu_ok:
        return "GPU check skipped: --cpu-ok says this machine runs on the CPU"
    if check.gpu and recipe.gpu == "none":
        return f"GPU check skipped: recipe {recipe.name!r} expects no GPU"
    if options.fast and is_slow(check):
        return "skipped by --fast (it imports TensorFlow or trains)"
    for need in check.needs:
        verdict = done.get(need)
        if verdict is not None and verdict.status not in (Status.PASS, Status.WARN):
            return f"skipped: it needs {need}, which did not pass ({verdict.status.value})"
    return None


def probes_to_run(checks: List[Check], recipe: Recipe, options: RunOptions) -> List[str]:
    """The probes the checks will read, leaving out those of checks skipped by flags or recipe."""
    names: List[str] = []
    for check in checks:
        if _skip_reason(check, recipe, options, {}) is None:
            names += [p for p in check.probes if p not in names]
    return names


def run_check(check: Check, facts: Facts, recipe: Recipe, options: RunOptions,
              done: Dict[str, Verdict]) -> Verdict:
    started = time.perf_counter()
    reason = _skip_reason(check, recipe, options, done)
    if reason:
        finding = Finding(Status.SKIP, reason)
    else:
        try:
            finding = check.function(_FactsView(facts, check), recipe)
            if not isinstance(finding, Finding):
                raise TypeError(f"returned {type(finding).__name__}, not a Finding")
        except Exception as exc:  # a check that raises becomes an error verdict, never a dead run
            evidence = {"traceback": traceback.format_exc()} if options.debug else {}
            finding = Finding(Status.ERROR, f"the check itself failed: {type(exc).__name__}: {exc}", evidence)
    step = (finding.step or check.step) if finding.status in (Status.FAIL, Status.WARN) else None
    fix = finding.fix or (f"merlin-doctor fix --only {step}" if step else None)
    return Verdict(check.id, finding.status, finding.summary, finding.evidence, fix, step,
                   time.perf_counter() - started)


def run_checks(checks: List[Check], facts: Facts, recipe: Recipe, options: RunOptions,
               on_verdict: Optional[Callable[[Verdict], None]] = None) -> List[Verdict]:
    done: Dict[str, Verdict] = {}
    for check in checks:
        verdict = run_check(check, facts, recipe, options, done)
        done[check.id] = verdict
        if on_verdict:
            on_verdict(verdict)
    return list(done.values())


def exit_code(verdicts: List[Verdict], strict: bool = False) -> int:
    bad = {Status.FAIL, Status.ERROR} | ({Status.WARN} if strict else set())
    return 1 if any(v.status in bad for v in verdicts) else 0
