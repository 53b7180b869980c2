"""Human text and JSON output. Nothing here decides anything; it only shows verdicts."""
from __future__ import annotations

import os
import re
import sys
from typing import Any, Dict, List, Optional, TextIO

from merlin_doctor import __version__
from merlin_doctor.verdict import Status, Verdict

JSON_SCHEMA_VERSION = 1
SYMBOLS = {Status.PASS: "✓", Status.WARN: "!", Status.FAIL: "✗", Status.SKIP: "-", Status.ERROR: "E"}
ASCII = {Status.PASS: "+", Status.WARN: "!", Status.FAIL: "x", Status.SKIP: "-", Status.ERROR: "E"}
COLOURS = {Status.PASS: "32", Status.WARN: "33", Status.FAIL: "31", Status.SKIP: "90", Status.ERROR: "35"}
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]")


def safe_text(text: Any) -> str:
    """Text from facts or logs, with escape sequences and control characters removed."""
    return _CONTROL.sub("", str(text))


def use_colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _can_encode(stream: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
        return True
    except (UnicodeEncodeError, LookupError):
        return False


class Terminal:
    """Streams `[✓] id  summary` lines as verdicts complete, then a summary with fixes."""

    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr, verbose: bool = False,
                 quiet: bool = False, colour: Optional[bool] = None):
        self.out, self.err = out, err
        self.verbose, self.quiet = verbose, quiet
        self.colour = use_colour(out) if colour is None else colour
        self.symbols = SYMBOLS if _can_encode(out, "✓✗") else ASCII

    def _paint(self, status: Status, text: str) -> str:
        return f"\x1b[{COLOURS[status]}m{text}\x1b[0m" if self.colour else text

    def progress(self, message: str) -> None:
        if not self.quiet:
            self.err.write(f"  … {message}\n")
            self.err.flush()

    def probe_started(self, probe) -> None:
        """Announce only slow probes: the fast ones finish before a user could read the line."""
        if probe.slow:
            self.progress(f"{probe.description} ...")

    def child_progress(self, event: Dict[str, Any]) -> None:
        """A slow child's progress: its stages, and each training epoch with its speed."""
        if event.get("event") == "stage":
            self.progress(f"  {event.get('stage')}")
        elif event.get("event") == "epoch":
            fields = [f"epoch {event.get('epoch')}/{event.get('epochs')}"]
            if event.get("loss") is not None:
                fields.append(f"loss {event['loss']:.4f}")
            if event.get("examples_per_s"):
                fields.append(f"{event['examples_per_s']:,.0f} examples/s")
            self.progress("  " + ", ".join(fields))

    def verdict(self, v: Verdict) -> None:
        if self.quiet and v.status in (Status.PASS, Status.SKIP):
            return
        mark = self._paint(v.status, f"[{self.symbols[v.status]}]")
        self.out.write(f"{mark} {v.id:<22} {safe_text(v.summary)}\n")
        if self.verbose and v.evidence:
            for key, value in v.evidence.items():
                self.out.write(f"      {key}: {safe_text(value)}\n")
        self.out.flush()

    def summary(self, verdicts: List[Verdict], strict: bool = False) -> None:
        counts = {s: sum(1 for v in verdicts if v.status is s) for s in Status}
        parts = [f"{counts[s]} {name}" for s, name in ((Status.PASS, "passed"), (Status.WARN, "warnings"),
                                                      (Status.FAIL, "failed"), (Status.ERROR, "errors"),
                                                      (Status.SKIP, "skipped")) if counts[s]]
        self.out.write("\n" + ", ".join(parts) + "\n")
        fixes: Dict[str, List[Verdict]] = {}
        for v in verdicts:
            if v.fix and (v.status.failed or v.status is Status.WARN):
                fixes.setdefault(v.fix, []).append(v)
        if fixes:
            self.out.write("\nTo fix:\n")
            for fix, group in fixes.items():  # one line per distinct command, naming every check it fixes
                worst = Status.FAIL if any(v.status.failed for v in group) else Status.WARN
                mark = self._paint(worst, f"[{self.symbols[worst]}]")
                self.out.write(f"  {mark} {', '.join(v.id for v in group)}: {safe_text(fix)}\n")
        self.out.flush()


def check_document(verdicts: List[Verdict], facts: Dict[str, Any], recipe_name: str, exit_code: int) -> Dict[str, Any]:
    """The `--json` document; its shape is documented in the README (JSON output)."""
    counts: Dict[str, int] = {s.value: 0 for s in Status}
    for v in verdicts:
        counts[v.status.value] += 1
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "doctor_version": __version__,
        "recipe": recipe_name,
        "exit_code": exit_code,
        "summary": counts,
        "verdicts": [v.to_dict() for v in verdicts],
        "facts": facts,
    }
