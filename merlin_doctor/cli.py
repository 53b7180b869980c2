"""The `merlin-doctor` command line: parse, call, print. Logic lives in the modules below it."""
from __future__ import annotations

import json
import sys
from typing import List, Optional

import click

from merlin_doctor import __version__
from merlin_doctor.errors import InputError

EXIT_USAGE = 2


class _InputFailure(click.ClickException):
    """An InputError shown as one line with exit code 2."""

    exit_code = EXIT_USAGE

    def show(self, file=None) -> None:
        click.echo(f"merlin-doctor: error: {self.message}", err=True)


class DoctorGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            raise _InputFailure(str(exc)) from None


def _emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group(cls=DoctorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="merlin-doctor")
def cli() -> None:
    """Set up and diagnose NVIDIA Merlin + TensorFlow GPU workstations.

    \b
    Start with:
      merlin-doctor check              judge this machine against the default recipe
      merlin-doctor check --cpu-ok     ... on a machine meant to run on the CPU
      merlin-doctor explain build.log  name the cause and fix in a pasted log
      merlin-doctor list               every check, what it needs, what fixes it
    """


recipe_option = click.option("--recipe", "-r", metavar="NAME|FILE",
                             help="Recipe to judge against: a name from `merlin-doctor recipes` or a YAML file "
                                  "(default: tf210-cuda112).")
timeout_option = click.option("--timeout", type=click.FloatRange(min=1), default=30.0, show_default=True,
                              help="Seconds any isolated probe (NVML, CUDA libraries, TensorFlow) may take.")


@cli.command()
@recipe_option
@click.option("--only", multiple=True, metavar="ID", help="Run only this check or area (repeatable), e.g. gpu.nvml or gpu.")
@click.option("--skip", multiple=True, metavar="ID", help="Leave out this check or area (repeatable).")
@click.option("--fast", is_flag=True, help="Only checks that import no TensorFlow and train nothing (about a second).")
@click.option("--cpu-ok", is_flag=True, help="This machine is meant to run on the CPU: skip the GPU checks.")
@click.option("--from", "from_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Judge a saved snapshot (`merlin-doctor facts -o FILE`) instead of this machine.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (schema in the README) on stdout.")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option("-v", "--verbose", is_flag=True, help="Show each verdict's evidence.")
@click.option("-q", "--quiet", is_flag=True, help="Show only problems and the summary; no progress.")
@timeout_option
@click.option("--debug", is_flag=True, help="Keep tracebacks of failing checks in their evidence.")
def check(recipe: Optional[str], only: List[str], skip: List[str], fast: bool, cpu_ok: bool,
          from_file: Optional[str], as_json: bool, strict: bool, verbose: bool, quiet: bool,
          timeout: float, debug: bool) -> None:
    """Judge this machine (or a saved snapshot) against a recipe.

    Prints one line per check as it completes ([✓] pass, [!] warning, [✗] failure,
    [-] skipped, [E] the check could not judge), then a summary and the command that
    fixes each problem. Exit code: 0 nothing failed, 1 something failed (or warned,
    with --strict), 2 bad usage or input.
    """
    from merlin_doctor.checks import all_checks
    from merlin_doctor.facts import Facts
    from merlin_doctor.probes import ProbeContext
    from merlin_doctor.recipe import load_recipe
    from merlin_doctor.render import HumanReport, json_report
    from merlin_doctor.runner import RunOptions, exit_code, probes_to_run, run_checks, select_checks

    loaded = load_recipe(recipe)
    checks = select_checks(all_checks(), only, skip)
    report = HumanReport(verbose=verbose, quiet=quiet or as_json)
    if from_file:
        facts = Facts.load(from_file)
    else:
        context = ProbeContext(recipe_path=loaded.path, timeout=timeout)
        facts = Facts.live(context, on_probe=report.probe_started)
    options = RunOptions(only=list(only), skip=list(skip), fast=fast, cpu_ok=cpu_ok, debug=debug)
    facts.prefetch(probes_to_run(checks, loaded, options))
    verdicts = run_checks(checks, facts, loaded, options, on_verdict=None if as_json else report.verdict)
    code = exit_code(verdicts, strict)
    if as_json:
        _emit_json(json_report(verdicts, facts.to_dict(), loaded.name, code))
    else:
        report.summary(verdicts, strict)
    sys.exit(code)


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def list_checks(as_json: bool) -> None:
    """List every check: id, what it verifies, what it needs, and the step that fixes it."""
    from merlin_doctor.checks import all_checks
    from merlin_doctor.runner import is_slow

    rows = [{"id": c.id, "description": c.description, "probes": list(c.probes), "needs": list(c.needs),
             "step": c.step, "gpu": c.gpu, "slow": is_slow(c)} for c in all_checks()]
    if as_json:
        _emit_json({"schema_version": 1, "checks": rows})
        return
    for r in rows:
        tags = [t for t, on in (("gpu", r["gpu"]), ("slow", r["slow"])) if on]
        click.echo(f"{r['id']:<24} {r['description']}")
        details = [f"reads: {', '.join(r['probes'])}"]
        if r["needs"]:
            details.append(f"needs: {', '.join(r['needs'])}")
        if r["step"]:
            details.append(f"fixed by step: {r['step']}")
        if tags:
            details.append(", ".join(tags))
        click.echo(f"{'':<24}   ({'; '.join(details)})")


@cli.command()
@recipe_option
@click.option("-o", "--output", metavar="FILE", type=click.Path(dir_okay=False),
              help="Write the snapshot to FILE (atomically) instead of stdout.")
@click.option("--fast", is_flag=True, help="Leave out the slow probes (TensorFlow import, training).")
@timeout_option
def facts(recipe: Optional[str], output: Optional[str], fast: bool, timeout: float) -> None:
    """Collect every probe's facts into one JSON snapshot.

    Judge it later, or on another machine, with `merlin-doctor check --from FILE`.
    """
    from merlin_doctor.facts import Facts
    from merlin_doctor.probes import ProbeContext
    from merlin_doctor.recipe import load_recipe
    from merlin_doctor.render import HumanReport

    loaded = load_recipe(recipe)
    report = HumanReport(quiet=output is None)
    snapshot = Facts.live(ProbeContext(recipe_path=loaded.path, timeout=timeout),
                          on_probe=report.probe_started)
    snapshot.collect_all(fast=fast)
    if output:
        snapshot.save(output)
        click.echo(f"facts written to {output}", err=True)
    else:
        _emit_json(snapshot.to_dict())


@cli.command()
@click.argument("name", required=False)
@click.option("--environment-yml", is_flag=True, help="Print the recipe as a conda environment.yml.")
def recipes(name: Optional[str], environment_yml: bool) -> None:
    """List the built-in recipes, or show one (NAME or a YAML file)."""
    import yaml

    from merlin_doctor.recipe import DEFAULT_RECIPE, available_recipes, conda_environment, load_recipe

    if not name:
        for recipe_name in available_recipes():
            r = load_recipe(recipe_name)
            mark = " (default)" if recipe_name == DEFAULT_RECIPE else ""
            click.echo(f"{recipe_name:<20} {r.description.split('. ')[0]}{mark}")
        return
    r = load_recipe(name)
    if environment_yml:
        click.echo(yaml.safe_dump(conda_environment(r), sort_keys=False), nl=False)
    else:
        with open(r.path, encoding="utf-8") as fh:
            click.echo(fh.read(), nl=False)


def main() -> None:
    cli(prog_name="merlin-doctor")
