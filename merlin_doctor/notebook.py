"""The doctor in Python and Jupyter: `merlin_doctor.check()` and the `%merlin_doctor` magic.

Progress while slow probes run shows as one line updated in place when IPython is
present, or as lines on stderr otherwise; IPython is never required.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import fields
from typing import Any, List, Optional

from merlin_doctor.errors import InputError
from merlin_doctor.options import CheckOptions
from merlin_doctor.session import CheckResult, run_doctor
from merlin_doctor.verdict import Verdict


class Progress:
    """Reports slow probes and the count of finished checks while a run goes on."""

    def __init__(self, quiet: bool = False):
        from merlin_doctor.render import Terminal

        self.quiet, self.done_checks, self.started = quiet, 0, time.perf_counter()
        # The CLI's progress lines, for a plain Python session; stderr as it is now, not at import.
        self.text = Terminal(out=sys.stdout, err=sys.stderr, quiet=quiet)
        self.handle = None if quiet else _display_handle()

    def _show(self, message: str) -> None:
        from IPython.display import Pretty

        if self.handle is not None:
            self.handle.update(Pretty(f"merlin-doctor: {message}"))

    def probe(self, probe: Any) -> None:
        if self.handle is None:
            self.text.probe_started(probe)
        elif probe.slow:
            self._show(f"{probe.description} ... ({self.done_checks} checks done)")

    def verdict(self, verdict: Verdict) -> None:
        self.done_checks += 1
        if self.handle is not None:
            self._show(f"{self.done_checks} checks done, last {verdict.id}: {verdict.status.value}")

    def finish(self) -> None:
        if self.handle is not None:
            self._show(f"{self.done_checks} checks in {time.perf_counter() - self.started:.1f} s")


def _display_handle():
    """An updatable output line in a running IPython/Jupyter session, else None."""
    try:
        from IPython import get_ipython
        from IPython.display import Pretty, display
    except ImportError:
        return None
    if get_ipython() is None:
        return None
    return display(Pretty("merlin-doctor: starting ..."), display_id=True)


def check(quiet: bool = False, **options: Any) -> CheckResult:
    """`merlin-doctor check` from Python: its flags as keyword arguments (the fields of
    `merlin_doctor.options.CheckOptions`: recipe="cpu", cpu_ok=True, only=["gpu"], fast=True,
    host=True, from_file=..., ...), the result as an object."""
    check_options = CheckOptions(**options)
    progress = Progress(quiet)
    try:
        return run_doctor(check_options, on_probe=progress.probe, on_verdict=progress.verdict)
    finally:
        progress.finish()


#: -v means nothing for the table: its rows always hold the evidence (folded).
_ALWAYS_ON = ("verbose",)


def magic(line: str) -> Optional[CheckResult]:
    """`%merlin_doctor check [FLAGS]`: the CLI's flags, parsed by the CLI itself; shows the table."""
    import click

    from merlin_doctor.cli import check as check_command

    args: List[str] = shlex.split(line)
    if not args or args[0] != "check":
        print("usage: %merlin_doctor check [FLAGS]   (the flags of `merlin-doctor check --help`)", file=sys.stderr)
        return None
    try:
        params = dict(check_command.make_context("merlin_doctor check", args[1:]).params)
    except click.exceptions.Exit:  # --help was printed
        return None
    except click.ClickException as exc:
        print(f"merlin-doctor: error: {exc.format_message()}", file=sys.stderr)
        return None
    as_json = params.pop("as_json")
    taken = {f.name for f in fields(CheckOptions)} | {"quiet"}
    cli_only = [k for k, v in params.items() if k not in taken and k not in _ALWAYS_ON and v not in (None, False, ())]
    if cli_only:
        flags = ", ".join("--" + k.replace("_", "-") for k in cli_only)
        print(
            f"merlin-doctor: error: {flags} works on the command line only: !merlin-doctor check {line[5:].strip()}",
            file=sys.stderr,
        )
        return None
    if as_json:
        params["quiet"] = True  # the document alone, as `check --json` prints it
    try:
        result = check(**{k: v for k, v in params.items() if k in taken})
    except InputError as exc:
        print(f"merlin-doctor: error: {exc}", file=sys.stderr)
        return None
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
        return None
    return result


def register_magic(ipython: Any) -> None:
    ipython.register_magic_function(magic, magic_kind="line", magic_name="merlin_doctor")
