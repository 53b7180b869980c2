"""Human text and JSON output. Nothing here decides anything; it only shows verdicts."""

from __future__ import annotations

import os
import re
import sys
import textwrap
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


#: Width of the check-id column: the longest built-in id (a test keeps it so).
ID_WIDTH = 24
#: Narrower than this, wrapped text would be a column of single words: leave it long.
MIN_TEXT_WIDTH = 24
PROBLEM_ORDER = {"fail": 0, "error": 0, "warn": 1}
SUMMARY_WORDS = (
    (Status.PASS, "passed", "passed"),
    (Status.WARN, "warning", "warnings"),
    (Status.FAIL, "failed", "failed"),
    (Status.ERROR, "error", "errors"),
    (Status.SKIP, "skipped", "skipped"),
)


def count_line(verdicts: List[Verdict]) -> str:
    """`12 passed, 1 warning, 3 failed, 21 skipped`."""
    counts = {s: sum(1 for v in verdicts if v.status is s) for s in Status}
    return ", ".join(f"{counts[s]} {one if counts[s] == 1 else many}" for s, one, many in SUMMARY_WORDS if counts[s])


# --- what every view (terminal, notebook, Markdown) shows the same way ------------------------
# Over `check --json` verdict dicts, so the HTML and the Markdown of a saved report use them too.


def problems(verdicts: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Failures and errors first, then warnings, those sharing a fix next to each other (so a
    view shows that fix once): groups by their worst status, then in the order the checks ran."""
    groups: Dict[Any, List[Dict[str, Any]]] = {}
    for i, v in enumerate(v for v in verdicts if v["status"] in PROBLEM_ORDER):
        groups.setdefault(v.get("fix") or i, []).append(v)  # no fix: a group of its own
    ordered = sorted(groups.values(), key=lambda group: min(PROBLEM_ORDER[v["status"]] for v in group))
    return [v for group in ordered for v in sorted(group, key=lambda v: PROBLEM_ORDER[v["status"]])]


def fix_groups(verdicts: List[Dict[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    """Each distinct fix of the problems once, with the verdicts it fixes, in problem order."""
    groups: Dict[str, List[Dict[str, Any]]] = {}
    for v in problems(verdicts):
        if v.get("fix"):
            groups.setdefault(v["fix"], []).append(v)
    return groups


def skip_groups(verdicts: List[Dict[str, Any]]) -> Dict[str, List[str]]:
    """The skipped checks' ids by reason: one line per reason instead of one per check."""
    groups: Dict[str, List[str]] = {}
    for v in verdicts:
        if v["status"] == Status.SKIP.value:
            groups.setdefault(v["summary"], []).append(v["id"])
    return groups


def problem_lines(verdicts: List[Dict[str, Any]], symbols: Dict[Status, str] = SYMBOLS) -> List[str]:
    """The problems as text, worst first, a fix shared by several shown once (for `result.problems`)."""
    lines: List[str] = []
    previous = None
    for v in problems(verdicts):
        lines.append(f"[{symbols[Status(v['status'])]}] {v['id']}: {safe_text(v['summary'])}")
        if v.get("fix"):
            lines.append("    fix: " + ("the same as above" if v["fix"] == previous else safe_text(v["fix"])))
        previous = v.get("fix")
    return lines


def terminal_width(out: TextIO) -> int:
    """Columns to wrap at: the terminal's (or $COLUMNS); 0 (no wrapping) when output is not a terminal."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    try:
        return os.get_terminal_size(out.fileno()).columns if out.isatty() else 0
    except (OSError, ValueError, AttributeError):
        return 0


class Terminal:
    """Streams `[✓] id  summary` lines as verdicts complete, then the skips folded by reason,
    a summary and the fixes. Text wraps at the terminal's width under its own column."""

    def __init__(
        self,
        out: TextIO = sys.stdout,
        err: TextIO = sys.stderr,
        verbose: bool = False,
        quiet: bool = False,
        colour: Optional[bool] = None,
        width: Optional[int] = None,
    ):
        self.out, self.err = out, err
        self.verbose, self.quiet = verbose, quiet
        self.colour = use_colour(out) if colour is None else colour
        self.symbols = SYMBOLS if _can_encode(out, "✓✗") else ASCII
        self.width = terminal_width(out) if width is None else width

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

    def wrap(self, text: str, indent: int, first: int = 0) -> List[str]:
        """`text` in lines that fit the width after `indent` columns (the first after `first` more),
        broken only between words; one line when there is no width or too little of it."""
        room = self.width - indent
        if room < MIN_TEXT_WIDTH:
            return [text]
        lines = textwrap.wrap(
            text, room, initial_indent=" " * first, break_long_words=False, break_on_hyphens=False
        ) or [""]
        return [lines[0][first:]] + lines[1:]

    def _line(self, status: Status, label: str, text: str) -> None:
        """`[✓] label  text`, the text wrapped under its own column."""
        mark = self._paint(status, f"[{self.symbols[status]}]")
        head = f"{label:<{ID_WIDTH}}"
        indent = len("[x] ") + ID_WIDTH + 1
        first = max(0, len(head) - ID_WIDTH)  # a longer label pushes the first line right
        lines = self.wrap(safe_text(text), indent, first)
        self.out.write(f"{mark} {head} {lines[0]}\n")
        for line in lines[1:]:
            self.out.write(" " * indent + line + "\n")

    def verdict(self, v: Verdict) -> None:
        """Stream one verdict; skips wait to be folded by reason (each streams with -v)."""
        if self.quiet and v.status in (Status.PASS, Status.SKIP) or v.status is Status.SKIP and not self.verbose:
            return
        self._line(v.status, v.id, v.summary)
        if self.verbose and v.evidence:
            for key, value in v.evidence.items():
                for i, line in enumerate(self.wrap(f"{key}: {safe_text(value)}", 8, first=0)):
                    self.out.write(("      " if i == 0 else "        ") + line + "\n")
        self.out.flush()

    def skips(self, verdicts: List[Verdict]) -> None:
        """One line per reason for the skipped checks, naming them (-v listed each as it came)."""
        if self.quiet or self.verbose:
            return
        for reason, ids in skip_groups([v.to_dict() for v in verdicts]).items():
            if len(ids) > 1:  # "7 skipped  it needs gpu.nvml, ...": the label already says skipped
                reason = reason[len("skipped: ") :] if reason.startswith("skipped: ") else reason
                self._line(Status.SKIP, f"{len(ids)} skipped", f"{reason} ({', '.join(ids)})")
            else:
                self._line(Status.SKIP, ids[0], reason)

    def summary(self, verdicts: List[Verdict]) -> None:
        """The counts, then each distinct fix once with the checks it fixes (after `skips`)."""
        self.out.write("\n" + count_line(verdicts) + "\n")
        groups = fix_groups([v.to_dict() for v in verdicts])
        if groups:
            self.out.write("\nTo fix:\n")
            for fix, group in groups.items():  # each distinct command once, naming every check it fixes
                worst = Status.FAIL if any(Status(v["status"]).failed for v in group) else Status.WARN
                mark = self._paint(worst, f"[{self.symbols[worst]}]")
                ids = self.wrap(", ".join(v["id"] for v in group) + ":", 6, first=0)
                self.out.write(f"  {mark} " + "\n      ".join(ids) + "\n")
                # The command is never wrapped: copied from the terminal, it must stay one line.
                self.out.write(f"      {safe_text(fix)}\n")
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
