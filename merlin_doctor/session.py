"""One doctor run: load the recipe, choose the checks, collect facts, judge, return the result.

`merlin-doctor check`, `report` and the notebook API (`merlin_doctor.check()`) all call
`run_doctor` with one `CheckOptions`, so a flag means the same thing in each; they differ
only in how they show the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from merlin_doctor.checks import Check
from merlin_doctor.errors import InputError
from merlin_doctor.facts import Facts
from merlin_doctor.options import CheckOptions
from merlin_doctor.verdict import Verdict

#: What `check --host` judges: the machine that runs a container image, not an env.
HOST_SELECTORS = ("container", "gpu.nvml")


class Problems(List[Verdict]):
    """`result.problems`: the verdicts, printed as the terminal shows them (not as dataclasses)."""

    def __repr__(self) -> str:
        from merlin_doctor.render import problem_lines

        return "\n".join(problem_lines([v.to_dict() for v in self])) or "no problems"


@dataclass
class CheckResult:
    """The verdicts of one run, with the facts they rest on. In Jupyter it shows as a table."""

    recipe: str
    verdicts: List[Verdict]
    snapshot: Facts
    exit_code: int
    fast: bool = False

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
    def problems(self) -> Problems:
        """Failures, errors and warnings, worst first; a list that prints as one line each with its fix."""
        from merlin_doctor.render import problems

        by_id = {v.id: v for v in self.verdicts}
        return Problems(by_id[d["id"]] for d in problems([v.to_dict() for v in self.verdicts]))

    def __getitem__(self, check_id: str) -> Verdict:
        for v in self.verdicts:
            if v.id == check_id:
                return v
        raise KeyError(f"no verdict for {check_id!r} in this run")

    def to_dict(self) -> Dict[str, Any]:
        """The same document `merlin-doctor check --json` prints."""
        from merlin_doctor.render import check_document

        return check_document(self.verdicts, self.snapshot.to_dict(), self.recipe, self.exit_code)

    def changes_since(self, path: str) -> list:
        """What changed between a baseline snapshot and this run's facts (probing what the
        baseline has that this run did not read yet)."""
        from merlin_doctor.baseline import compare, probes_to_compare
        from merlin_doctor.probes.identity import local_identity

        good = Facts.load(path)
        self.snapshot.collect(probes_to_compare(good.probes, self.fast))
        return compare(good.to_dict(), self.snapshot.to_dict(), local_identity())

    def _repr_html_(self) -> str:
        from merlin_doctor.render_html import report_table

        return report_table(self.to_dict())

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.to_dict()["summary"].items() if n)
        return f"<CheckResult recipe={self.recipe!r} ok={self.ok} ({counts})>"


def _side(checks: List[Check], host: bool, selectors: List[str]) -> List[Check]:
    """The host checks for --host, every other check otherwise; a selector from the wrong side is an error."""
    from merlin_doctor.runner import matches

    on_host = [c for c in checks if any(matches(c, s) for s in HOST_SELECTORS)]
    in_env = [c for c in checks if c.area != "container"]  # the GPU checks belong to both sides
    mine = on_host if host else in_env
    for selector in selectors:
        chosen = [c for c in checks if matches(c, selector)]
        if chosen and not any(c in mine for c in chosen):
            hint = (
                "it judges an env, not the container host: drop --host"
                if host
                else "it judges the host of a container recipe: add --host"
            )
            raise InputError(f"check {selector!r} does not run here; {hint}")
    return mine


def run_doctor(
    options: CheckOptions,
    on_probe: Optional[Callable[[Any], None]] = None,
    on_verdict: Optional[Callable[[Verdict], None]] = None,
    on_progress: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> CheckResult:
    """Judge this machine (or a saved snapshot) against a recipe, as `options` say."""
    from merlin_doctor.checks import all_checks
    from merlin_doctor.probes.scheduler import early_batch
    from merlin_doctor.recipe import DEFAULT_CONTAINER_RECIPE, load_recipe
    from merlin_doctor.runner import exit_code, probes_to_run, run_checks, select_checks
    from merlin_doctor.target import in_env_commands, probe_context

    o = options
    loaded = load_recipe(o.recipe or (DEFAULT_CONTAINER_RECIPE if o.host else None))
    if o.from_file and (o.prefix or o.name):
        raise InputError("--from judges a saved snapshot: drop --prefix/--name (or --from)")
    if o.host and (o.prefix or o.name):
        raise InputError("--host judges this machine as a container host, not an env: drop --prefix/--name")
    if o.host and not loaded.is_container:
        raise InputError(
            f"--host judges the machine that runs a container image, and recipe {loaded.name!r} is a "
            f"{loaded.kind} recipe (try --recipe {DEFAULT_CONTAINER_RECIPE})"
        )
    if o.from_file:
        facts = Facts.load(o.from_file)
    else:
        context = probe_context(
            loaded,
            o.prefix,
            o.name,
            o.timeout,
            progress=on_progress,
            options={"device": o.device, "e2e_size": o.e2e_size},
        )
        facts = Facts.live(context, on_probe=on_probe)
        on_verdict = in_env_commands(context.python, context.prefix, on_verdict)
    if not (o.only or o.host or o.cpu_ok or loaded.gpu == "none"):
        facts.prefetch(early_batch())  # before the checks are imported: probes/scheduler.py says why
    checks = select_checks(_side(all_checks(), o.host, o.only + o.skip), o.only, o.skip)
    facts.prefetch(probes_to_run(checks, loaded, o))
    verdicts = run_checks(checks, facts, loaded, o, on_verdict=on_verdict)
    return CheckResult(loaded.name, verdicts, facts, exit_code(verdicts, o.strict), o.fast)


def collect_facts(
    recipe: Optional[str],
    fast: bool,
    timeout: float,
    on_probe: Optional[Callable[[Any], None]] = None,
    prefix: Optional[str] = None,
    name: Optional[str] = None,
) -> Facts:
    """Every probe's facts (`merlin-doctor facts`) for the env named (or this one), the slow ones unless `fast`."""
    from merlin_doctor.recipe import load_recipe
    from merlin_doctor.target import probe_context

    snapshot = Facts.live(probe_context(load_recipe(recipe), prefix, name, timeout), on_probe=on_probe)
    snapshot.collect_all(fast=fast)
    return snapshot


def container_run_line(recipe: str, workdir: str, jupyter_port: int, shell: bool, timeout: float):
    """The `docker run` line (container.RunLine) for a container recipe on this host's facts."""
    import os

    import merlin_doctor
    from merlin_doctor.container import docker_run
    from merlin_doctor.probes.context import ProbeContext
    from merlin_doctor.recipe import load_recipe

    loaded = load_recipe(recipe)
    if not loaded.is_container:
        raise InputError(
            f"recipe {loaded.name!r} is a {loaded.kind} recipe; container-cmd needs a kind: container "
            "recipe such as merlin-tensorflow-23.02"
        )
    host = Facts.live(ProbeContext(recipe_path=loaded.path, timeout=timeout))["container_host"]
    package = os.path.dirname(os.path.abspath(merlin_doctor.__file__))
    return loaded.name, docker_run(loaded, host, os.path.abspath(workdir), package, jupyter_port, shell)
