"""The `merlin-doctor` command line: parse, call, print. Logic lives in the modules below it."""

from __future__ import annotations

import json
import math
import sys
from typing import Any, Dict, List, Optional

import click

from merlin_doctor import __version__
from merlin_doctor.errors import InputError, one_line, os_error_line

EXIT_USAGE = 2


class _InputFailure(click.ClickException):
    """An InputError or a usage error shown as one line with exit code 2."""

    exit_code = EXIT_USAGE

    def show(self, file=None) -> None:
        click.echo(f"merlin-doctor: error: {one_line(self.message)}", err=True)


class _WriteFailure(_InputFailure):
    """An OSError while reading or writing a file: one line naming the file, exit code 1."""

    exit_code = 1


def _usage_failure(exc: click.UsageError) -> _InputFailure:
    where = exc.ctx.command_path if exc.ctx is not None else "merlin-doctor"
    return _InputFailure(f"{exc.format_message()} (see `{where} --help`)")


class DoctorGroup(click.Group):
    """Every failure the user can cause is one line: usage and input errors exit 2, a file
    that cannot be read or written (read-only, full disk, permissions) exits 1."""

    def parse_args(self, ctx: click.Context, args: list) -> list:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _usage_failure(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            raise _InputFailure(str(exc)) from None
        except click.UsageError as exc:
            raise _usage_failure(exc) from None
        except OSError as exc:
            raise _WriteFailure(os_error_line(exc)) from None


class _Seconds(click.FloatRange):
    """Seconds: a finite number of at least 1 (FloatRange alone lets `nan` and `inf` through)."""

    name = "seconds"

    def __init__(self) -> None:
        super().__init__(min=1)

    def convert(self, value, param, ctx):
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return seconds


def _not_empty(ctx: click.Context, param: click.Parameter, value):
    """An empty string where a name or a path belongs is a mistake, never "use the default"."""
    values = value if isinstance(value, tuple) else (value,)
    if any(v == "" for v in values):
        raise click.BadParameter("must not be empty", ctx=ctx, param=param)
    return value


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
      merlin-doctor check --host       judge this machine as the host of the merlin-tensorflow image
      merlin-doctor container-cmd      the docker run line for that image, with the GPUs and Jupyter
      merlin-doctor explain build.log  name the cause and fix in a pasted log
      merlin-doctor list               every check, what it needs, what fixes it
    """


recipe_option = click.option(
    "--recipe",
    "-r",
    metavar="NAME|FILE",
    callback=_not_empty,
    help="Recipe to judge against: a name from `merlin-doctor recipes` or a YAML file (default: tf210-cuda112).",
)


def env_options(function):
    """`--prefix DIR` / `--name ENV`: the env to judge from outside (as `conda doctor -p/-n`)."""
    function = click.option(
        "--name",
        "-n",
        metavar="ENV",
        callback=_not_empty,
        help="Judge the named conda env from outside (the doctor need not be installed in it).",
    )(function)
    return click.option(
        "--prefix",
        "-p",
        metavar="DIR",
        type=click.Path(file_okay=False),
        callback=_not_empty,
        help="Judge the env (conda env or venv) in DIR from outside: its Python, packages, "
        "TensorFlow and activation, run with its own interpreter.",
    )(function)


timeout_option = click.option(
    "--timeout",
    type=_Seconds(),
    default=30.0,
    show_default=True,
    help="Seconds any isolated probe (NVML, CUDA libraries, TensorFlow) may take.",
)


@cli.command()
@recipe_option
@env_options
@click.option(
    "--only",
    multiple=True,
    metavar="ID",
    callback=_not_empty,
    help="Run only this check or area (repeatable), e.g. gpu.nvml or gpu.",
)
@click.option(
    "--skip", multiple=True, metavar="ID", callback=_not_empty, help="Leave out this check or area (repeatable)."
)
@click.option("--fast", is_flag=True, help="Only checks that import no TensorFlow and train nothing (about a second).")
@click.option("--cpu-ok", is_flag=True, help="This machine is meant to run on the CPU: skip the GPU checks.")
@click.option(
    "--from",
    "from_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    callback=_not_empty,
    help="Judge a saved snapshot (`merlin-doctor facts -o FILE`) instead of this machine.",
)
@click.option(
    "--baseline",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    callback=_not_empty,
    help="Also show what changed since this known-good snapshot or report (driver, libraries, "
    "packages, activation variables).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (schema in the README) on stdout.")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option("-v", "--verbose", is_flag=True, help="Show each verdict's evidence.")
@click.option("-q", "--quiet", is_flag=True, help="Show only problems and the summary; no progress.")
@timeout_option
@click.option("--debug", is_flag=True, help="Keep tracebacks of failing checks in their evidence.")
@click.option(
    "--host",
    is_flag=True,
    help="Judge this machine as the host of a container recipe (docker, NVIDIA runtime and toolkit, "
    "driver, disk) instead of an env; default recipe merlin-tensorflow-23.02.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "gpu"]),
    default="auto",
    show_default=True,
    help="Where the reference PLE model trains (auto: a GPU when TensorFlow sees one).",
)
@click.option(
    "--e2e-size",
    type=click.Choice(["quick", "standard", "burn-in"]),
    default="quick",
    show_default=True,
    help="How much the reference PLE model trains: quick (about 20 s on a 2-core CPU), standard, burn-in (for GPUs).",
)
def check(baseline: Optional[str], as_json: bool, verbose: bool, quiet: bool, **flags: Any) -> None:
    """Judge this machine and an env (the one the doctor runs in, or --prefix/--name) against a recipe.

    Prints one line per check as it completes ([✓] pass, [!] warning, [✗] failure,
    [-] skipped, [E] the check could not judge), then a summary and the command that
    fixes each problem. Exit code: 0 nothing failed, 1 something failed (or warned,
    with --strict), 2 bad usage or input.
    """
    from merlin_doctor.options import CheckOptions
    from merlin_doctor.render import Terminal
    from merlin_doctor.session import run_doctor

    report = Terminal(verbose=verbose, quiet=quiet or as_json)
    result = run_doctor(
        CheckOptions(**flags),
        on_probe=report.probe_started,
        on_verdict=None if as_json else report.verdict,
        on_progress=report.child_progress,
    )
    changes = result.changes_since(baseline) if baseline else None
    if as_json:
        data = result.to_dict()
        if changes is not None:
            data.update(baseline=baseline, changes=[c.to_dict() for c in changes])
        _emit_json(data)
    else:
        report.skips(result.verdicts)
        if baseline and changes is not None:
            _print_changes(baseline, changes)
        report.summary(result.verdicts)
    sys.exit(result.exit_code)


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def list_checks(as_json: bool) -> None:
    """List every check: id, what it verifies, what it needs, and the step that fixes it."""
    from merlin_doctor.checks import all_checks
    from merlin_doctor.runner import is_slow

    rows: List[Dict[str, Any]] = [
        {
            "id": c.id,
            "description": c.description,
            "probes": list(c.probes),
            "optional_probes": list(c.optional_probes),
            "needs": list(c.needs),
            "step": c.step,
            "gpu": c.gpu,
            "slow": is_slow(c),
        }
        for c in all_checks()
    ]
    if as_json:
        _emit_json({"schema_version": 1, "checks": rows})
        return
    for r in rows:
        tags = [t for t, on in (("gpu", r["gpu"]), ("slow", r["slow"])) if on]
        click.echo(f"{r['id']:<24} {r['description']}")
        details = [
            f"reads: {', '.join(r['probes'])}"
            + (f" (and {', '.join(r['optional_probes'])} when present)" if r["optional_probes"] else "")
        ]
        if r["needs"]:
            details.append(f"needs: {', '.join(r['needs'])}")
        if r["step"]:
            details.append(f"fixed by step: {r['step']}")
        if tags:
            details.append(", ".join(tags))
        click.echo(f"{'':<24}   ({'; '.join(details)})")


@cli.command()
@recipe_option
@env_options
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    callback=_not_empty,
    help="Write the snapshot to FILE (atomically; a device or FIFO such as /dev/stdout is written to) "
    "instead of stdout.",
)
@click.option("--force", is_flag=True, help="Replace FILE even if it is not an earlier facts snapshot.")
@click.option("--fast", is_flag=True, help="Leave out the slow probes (TensorFlow import, training).")
@timeout_option
def facts(
    recipe: Optional[str],
    prefix: Optional[str],
    name: Optional[str],
    output: Optional[str],
    force: bool,
    fast: bool,
    timeout: float,
) -> None:
    """Collect every probe's facts into one JSON snapshot.

    Judge it later, or on another machine, with `merlin-doctor check --from FILE`.
    """
    from merlin_doctor.render import Terminal
    from merlin_doctor.session import collect_facts

    report = Terminal(quiet=output is None)
    snapshot = collect_facts(recipe, fast, timeout, on_probe=report.probe_started, prefix=prefix, name=name)
    if output:
        snapshot.save(output, force)
        click.echo(f"facts written to {output}", err=True)
    else:
        _emit_json(snapshot.to_dict())


@cli.command()
@click.argument("name", required=False)
@click.option("--environment-yml", is_flag=True, help="Print the recipe as a conda environment.yml.")
def recipes(name: Optional[str], environment_yml: bool) -> None:
    """List the built-in recipes, or show one (NAME or a YAML file)."""
    import yaml

    from merlin_doctor.recipe import (
        DEFAULT_RECIPE,
        available_recipes,
        conda_environment,
        load_buildable_recipe,
        load_recipe,
    )

    if not name:
        for recipe_name in available_recipes():
            r = load_recipe(recipe_name)
            mark = " (default)" if recipe_name == DEFAULT_RECIPE else ""
            click.echo(f"{recipe_name:<24} {r.description.split('. ')[0]}{mark}")
        return
    r = load_buildable_recipe(name) if environment_yml else load_recipe(name)
    if environment_yml:
        click.echo(yaml.safe_dump(conda_environment(r), sort_keys=False), nl=False)
    else:
        with open(r.path, encoding="utf-8") as fh:
            click.echo(fh.read(), nl=False)


@cli.command()
@click.argument("log", default="-", metavar="[FILE|-]")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (matches, best first) on stdout.")
@click.option("--all", "show_all", is_flag=True, help="Also show the harmless messages recognised.")
def explain(log: str, as_json: bool, show_all: bool) -> None:
    """Name the cause and the fix of the problems in a log (a file, or - for stdin).

    Reads TensorFlow / CUDA / RAPIDS output, tracebacks, notebook output, pip or conda
    output, and prints each recognised problem, root cause first, with its fix and the
    lines that prove it. Exit code: 0 nothing but harmless messages, 1 a problem
    recognised, 2 unreadable input.
    """
    from merlin_doctor.explain import explain_file, format_text
    from merlin_doctor.render import Terminal

    if log == "-" and sys.stdin.isatty():
        click.echo("reading the log from standard input (end with Ctrl-D)", err=True)
    result = explain_file(log)
    if as_json:
        _emit_json(result.to_dict())
    else:
        for line in format_text(result, show_all, Terminal().symbols):
            click.echo(line)
    sys.exit(result.exit_code)


def _converge_options(function):
    """The options `setup` and `fix` share (`./setup_env` takes the same as `setup`)."""
    from merlin_doctor.names import ENGINE_CHOICES, STEP_IDS

    options = [
        recipe_option,
        click.option(
            "--name",
            "-n",
            metavar="ENV",
            callback=_not_empty,
            help="A named conda env (setup's default: the recipe's env_name, e.g. merlin; fix's: the active env).",
        ),
        click.option(
            "--prefix", "-p", metavar="DIR", callback=_not_empty, help="The env's directory (instead of a named env)."
        ),
        click.option(
            "--engine",
            type=click.Choice(ENGINE_CHOICES),
            default="auto",
            show_default=True,
            help="What creates the conda env: auto prefers micromamba, then mamba, then conda, "
            "then the embedded rattler engine (no conda needed).",
        ),
        click.option(
            "--python",
            metavar="PATH",
            help="The Python a venv recipe (kind: venv, e.g. tf210-pip) is made "
            "with (default: one of the recipe's version found here).",
        ),
        click.option("--dry-run", is_flag=True, help="Print the exact plan (commands, files, links); change nothing."),
        click.option("--yes", "-y", is_flag=True, help="Apply without asking (needed when not on a terminal)."),
        click.option("--force", is_flag=True, help="Replace files in the way that merlin-doctor did not make."),
        click.option(
            "--only",
            multiple=True,
            metavar="STEP",
            callback=_not_empty,
            help=f"Run only this step (repeatable): {', '.join(STEP_IDS)}.",
        ),
        click.option(
            "--log",
            metavar="FILE",
            callback=_not_empty,
            help="Append the log here (default: a new file under $XDG_STATE_HOME/merlin-doctor/logs/).",
        ),
        click.option("-q", "--quiet", is_flag=True, help="No progress lines; only the plan and the outcomes."),
        click.option(
            "--json", "as_json", is_flag=True, help="Print one JSON document (plan, outcomes, log) on stdout."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@cli.command()
@_converge_options
def setup(**options) -> None:
    """Create or converge a conda env (or a venv, for a venv recipe) from a recipe: safe to re-run, resumable.

    \b
    Steps, in order (each skipped when already done):
      env         create the env with the recipe's channels and conda packages
      pip         the recipe's pip groups, in order, with the env's own pip
      links       symlinks (TensorRT .so.7 -> .so.8), only where the target exists
      activation  activate.d sets the variables, deactivate.d restores them
      copies      libdevice into lib/nvvm/libdevice/, checked by sha256
    Shows the plan and asks first (not on a terminal: pass --yes). Never touches
    the base env, never edits shell rc files, never needs root. One run per env at a
    time (PREFIX.merlin-doctor.lock); everything run and changed goes to a log whose
    path is printed. Exit code: 0 done, 1 a step failed, 2 bad usage or input.
    """
    from merlin_doctor.setup.orchestrate import Options
    from merlin_doctor.setup.orchestrate import setup as run_setup

    sys.exit(run_setup(Options(**options)))


@cli.command()
@_converge_options
def fix(**options) -> None:
    """Repair the current env (VIRTUAL_ENV or CONDA_PREFIX, or --prefix/--name): run the steps failing checks name.

    Runs the checks that name a repair step (missing symlink, stale activation script,
    missing libdevice, missing pip group, ...), shows the plan, runs those steps, checks
    again and prints each verdict before -> after. Exit code: 0 repaired (or nothing to
    repair), 1 a step failed or a repairable check still fails, 2 bad usage or input.
    """
    from merlin_doctor.setup.orchestrate import Options
    from merlin_doctor.setup.orchestrate import fix as run_fix

    sys.exit(run_fix(Options(**options)))


@cli.command("container-cmd")
@click.option(
    "--recipe",
    "-r",
    metavar="NAME|FILE",
    default="merlin-tensorflow-23.02",
    show_default=True,
    help="A container recipe (`merlin-doctor recipes` lists them).",
)
@click.option(
    "--jupyter-port",
    type=click.IntRange(1, 65535),
    default=8888,
    show_default=True,
    help="Port Jupyter listens on, published on the same host port.",
)
@click.option(
    "--workdir",
    type=click.Path(exists=True, file_okay=False),
    default=".",
    show_default=True,
    help="Host directory mounted at /workspace for your notebooks and data.",
)
@click.option("--shell", is_flag=True, help="Open a bash shell after the check instead of starting Jupyter.")
@click.option("--json", "as_json", is_flag=True, help="Print the argv, the command and the reasons as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the command, without the notes on stderr.")
@timeout_option
def container_cmd(
    recipe: str, jupyter_port: int, workdir: str, shell: bool, as_json: bool, quiet: bool, timeout: float
) -> None:
    """Print the `docker run` line that starts a container recipe's image with the GPUs.

    It looks at this host's docker and NVIDIA Container Toolkit first (--gpus all, or
    --runtime=nvidia where only that works), publishes Jupyter's port, mounts your work
    directory, and runs `merlin-doctor check` inside the image before Jupyter starts.
    Copy it, or run it: eval "$(merlin-doctor container-cmd -q)".
    """
    from merlin_doctor.session import container_run_line

    name, line = container_run_line(recipe, workdir, jupyter_port, shell, timeout)
    if as_json:
        _emit_json(dict(line.to_dict(), schema_version=1, recipe=name))
        return
    click.echo(line.command())
    if not quiet:
        for note in line.notes:
            click.echo(f"# {note}", err=True)


def _print_changes(path: str, changes: list) -> None:
    from merlin_doctor.baseline import change_lines
    from merlin_doctor.render import safe_text

    if not changes:
        click.echo(f"\nNothing changed since the baseline {path}.")
        return
    click.echo(f"\nChanged since the baseline {path}:")
    for line in change_lines(changes):
        click.echo(f"  {safe_text(line)}")


@cli.command()
@recipe_option
@env_options
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    default="merlin-doctor-report.json",
    callback=_not_empty,
    show_default=True,
    help="Where to write the report (JSON, written atomically).",
)
@click.option(
    "--from",
    "from_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    callback=_not_empty,
    help="Report on a saved snapshot (`merlin-doctor facts -o FILE`) instead of this machine.",
)
@click.option("--fast", is_flag=True, help="Leave out the slow probes and checks (TensorFlow import, training).")
@click.option("--cpu-ok", is_flag=True, help="This machine is meant to run on the CPU: skip the GPU checks.")
@click.option("--markdown", is_flag=True, help="Also print the Markdown summary on stdout, to paste into an issue.")
@click.option("--force", is_flag=True, help="Replace FILE even if it is not an earlier merlin-doctor report.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@timeout_option
def report(
    recipe: Optional[str],
    prefix: Optional[str],
    name: Optional[str],
    output: str,
    from_file: Optional[str],
    fast: bool,
    cpu_ok: bool,
    markdown: bool,
    force: bool,
    quiet: bool,
    timeout: float,
) -> None:
    """Write one redacted file to share: facts, verdicts, packages and a Markdown summary.

    \b
    User and host names, home directories, IP and MAC addresses, GPU UUIDs and serials
    become placeholders (<user>, <host>, <home>, <ip-1>, <gpu-uuid-1>, ...); environment
    variables are kept only from an allowlist (CUDA_*, TF_*, CONDA_*, PATH, ...) and
    anything that looks like a secret (tokens, keys, passwords, URL credentials) is dropped.
    The file is a snapshot too: `merlin-doctor check --from FILE` judges it, and
    `check --baseline FILE` shows what changed since. Read it before you post it.
    """
    import datetime

    from merlin_doctor.options import CheckOptions
    from merlin_doctor.probes.identity import local_identity
    from merlin_doctor.recipe import load_recipe
    from merlin_doctor.render import Terminal
    from merlin_doctor.report import build_report, write_report
    from merlin_doctor.session import run_doctor

    progress = Terminal(quiet=quiet)
    options = CheckOptions(
        recipe, fast=fast, cpu_ok=cpu_ok, from_file=from_file, timeout=timeout, prefix=prefix, name=name
    )
    result = run_doctor(options, on_probe=progress.probe_started)
    result.snapshot.collect_all(fast=fast)  # the whole snapshot, not only what the checks read
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    doc, redaction = build_report(
        result.snapshot.to_dict(),
        result.verdicts,
        result.recipe,
        result.exit_code,
        local_identity(),
        now,
        keep_words=(load_recipe(recipe).env_name or "",),
    )
    write_report(output, doc, force)
    counts = ", ".join(f"{n} {status}" for status, n in doc["summary"].items() if n)
    click.echo(f"report written to {output} ({counts})", err=markdown)
    click.echo(f"{redaction.reminder()}. Read it before you share it.", err=markdown)
    if markdown:
        click.echo(doc["markdown"])


@cli.command()
@click.option(
    "--scheduler", metavar="ADDRESS", callback=_not_empty, help="A running Dask scheduler, e.g. tcp://10.0.0.5:8786."
)
@click.option(
    "--local",
    type=click.IntRange(min=1),
    metavar="N",
    help="Start N local worker processes (a LocalCluster; a LocalCUDACluster, one worker per GPU, "
    "when dask-cuda and GPUs are here) and probe them.",
)
@recipe_option
@click.option("--fast", is_flag=True, help="Leave out the slow probes and checks (TensorFlow import, training).")
@click.option("--cpu-ok", is_flag=True, help="The workers are meant to run on the CPU: skip the GPU checks.")
@click.option(
    "--every-worker",
    is_flag=True,
    help="Probe each worker, even those sharing a host, interpreter and environment with another.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@click.option(
    "--timeout",
    type=_Seconds(),
    default=120.0,
    show_default=True,
    help="Seconds the workers get to return their facts; one that dies or takes longer is reported "
    "as such. Probes that can hang (NVML, CUDA libraries) get half of it.",
)
def fleet(
    scheduler: Optional[str],
    local: Optional[int],
    recipe: Optional[str],
    fast: bool,
    cpu_ok: bool,
    every_worker: bool,
    as_json: bool,
    quiet: bool,
    timeout: float,
) -> None:
    """Run the doctor on every worker of a Dask cluster and compare them.

    Collects the facts on each worker, judges them here, and prints one table: the
    configurations (workers grouped by driver, GPUs, CUDA library versions, Python and key
    packages) with the outliers that differ from the majority, then each worker's verdicts.
    A worker that dies, hangs or cannot import merlin-doctor is reported, never waited on
    past --timeout. Workers sharing a host, interpreter and environment are probed once.

    \b
    Examples:
      merlin-doctor fleet --local 4                        this workstation, 4 worker processes
      merlin-doctor fleet --scheduler tcp://10.0.0.5:8786  every worker of a running cluster
    Exit code: 0 every worker answered, they agree and nothing failed; 1 otherwise;
    2 bad usage or an unreachable scheduler.
    """
    from merlin_doctor.fleet import run_fleet
    from merlin_doctor.fleet.table import table_lines
    from merlin_doctor.render import Terminal

    if bool(scheduler) == bool(local):
        raise click.UsageError("give one of --scheduler ADDRESS or --local N")
    human = Terminal(quiet=quiet or as_json)
    doc = run_fleet(
        scheduler, local, recipe, timeout, fast=fast, cpu_ok=cpu_ok, every_worker=every_worker, progress=human.progress
    )
    if as_json:
        _emit_json(doc)
    else:
        for line in table_lines(doc, human.symbols):
            click.echo(line)
    sys.exit(doc["exit_code"])


def main() -> None:
    cli(prog_name="merlin-doctor")
