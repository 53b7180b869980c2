"""One doctor run: load the recipe, choose the checks, collect facts, judge, return the result.

`merlin-doctor check` and the notebook API (`merlin_doctor.check()`) both call `run_check`,
so a flag means the same thing in both; they differ only in how they show the result.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

from merlin_doctor.checks import Check
from merlin_doctor.errors import InputError
from merlin_doctor.facts import Facts
from merlin_doctor.verdict import Status, Verdict

#: What `check --host` judges: the machine that runs a container image, not an env.
HOST_SELECTORS = ("container", "gpu.nvml")

Names = Union[str, Iterable[str], None]


@dataclass
class CheckResult:
    """The verdicts of one run, with the facts they rest on. In Jupyter it shows as a table."""

    recipe: str
    verdicts: List[Verdict]
    snapshot: Facts
    exit_code: int

    @property
    def ok(self) -> bool:
        """True when nothing failed (warnings allowed, unless the run was --strict)."""
        return self.exit_code == 0

    @property
    def statuses(self) -> Dict[str, str]:
        """`{"gpu.nvml": "pass", ...}` in the order the checks ran."""
        return {v.id: v.status.value for v in self.verdicts}

    @property
    def facts(self) -> Dict[str, Dict[str, Any]]:
        """Each probe's facts by probe name, e.g. `result.facts["nvml"]["driver_version"]`."""
        return self.snapshot.probes

    @property
    def problems(self) -> List[Verdict]:
        """Failures, errors and warnings, in the order the checks ran."""
        return [v for v in self.verdicts if v.status.failed or v.status is Status.WARN]

    def __getitem__(self, check_id: str) -> Verdict:
        for v in self.verdicts:
            if v.id == check_id:
                return v
        raise KeyError(f"no verdict for {check_id!r} in this run")

    def to_dict(self) -> Dict[str, Any]:
        """The same document `merlin-doctor check --json` prints."""
        from merlin_doctor.render import json_report

        return json_report(self.verdicts, self.snapshot.to_dict(), self.recipe, self.exit_code)

    def _repr_html_(self) -> str:
        from merlin_doctor.render_html import report_table

        return report_table(self.to_dict())

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.to_dict()["summary"].items() if n)
        return f"<CheckResult recipe={self.recipe!r} ok={self.ok} ({counts})>"


def _names(value: Names) -> List[str]:
    """`only="gpu"` and `only=["gpu", "host"]` both work from Python."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _side(checks: List[Check], host: bool, selectors: List[str]) -> List[Check]:
    """The host checks for --host, every other check otherwise; a selector from the wrong side is an error."""
    from merlin_doctor.runner import matches

    on_host = [c for c in checks if any(matches(c, s) for s in HOST_SELECTORS)]
    in_env = [c for c in checks if c.area != "container"]  # the GPU checks belong to both sides
    mine = on_host if host else in_env
    for selector in selectors:
        chosen = [c for c in checks if matches(c, selector)]
        if chosen and not any(c in mine for c in chosen):
            hint = ("it judges an env, not the container host: drop --host" if host
                    else "it judges the host of a container recipe: add --host")
            raise InputError(f"check {selector!r} does not run here; {hint}")
    return mine


def run_check(recipe: Optional[str] = None, only: Names = None, skip: Names = None, fast: bool = False,
              cpu_ok: bool = False, from_file: Optional[str] = None, host: bool = False, strict: bool = False,
              timeout: float = 30.0, debug: bool = False, device: str = "auto", e2e_size: str = "quick",
              on_probe: Optional[Callable[[Any], None]] = None,
              on_verdict: Optional[Callable[[Verdict], None]] = None,
              on_progress: Optional[Callable[[Dict[str, Any]], None]] = None) -> CheckResult:
    """Judge this machine (or a saved snapshot) against a recipe; the arguments are `check`'s flags."""
    from merlin_doctor.checks import all_checks
    from merlin_doctor.probes import PROBES, ProbeContext
    from merlin_doctor.recipe import DEFAULT_CONTAINER_RECIPE, load_recipe
    from merlin_doctor.runner import RunOptions, exit_code, probes_to_run, run_checks, select_checks

    only, skip = _names(only), _names(skip)
    loaded = load_recipe(recipe or (DEFAULT_CONTAINER_RECIPE if host else None))
    if host and not loaded.is_container:
        raise InputError(f"--host judges the machine that runs a container image, and recipe {loaded.name!r} is a "
                         f"{loaded.kind} recipe (try --recipe {DEFAULT_CONTAINER_RECIPE})")
    if from_file:
        facts = Facts.load(from_file)
    else:
        context = ProbeContext(recipe_path=loaded.path, timeout=timeout, progress=on_progress,
                               options={"device": device, "e2e_size": e2e_size})
        facts = Facts.live(context, on_probe=on_probe)
        if not (only or host or cpu_ok or loaded.gpu == "none"):
            # The isolated GPU probes' child is the long pole of a run: start it before
            # the checks are even imported, so it works while this process does.
            facts.prefetch(p.name for p in PROBES if p.isolated and not p.slow)
    checks = select_checks(_side(all_checks(), host, only + skip), only, skip)
    options = RunOptions(only=only, skip=skip, fast=fast, cpu_ok=cpu_ok, debug=debug)
    facts.prefetch(probes_to_run(checks, loaded, options))
    verdicts = run_checks(checks, facts, loaded, options, on_verdict=on_verdict)
    return CheckResult(loaded.name, verdicts, facts, exit_code(verdicts, strict))
