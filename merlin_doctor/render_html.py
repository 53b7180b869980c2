"""Verdicts as one self-contained HTML table (Jupyter's `_repr_html_`). Shows, decides nothing.

The reader comes for the problems, so they come first (failures, then warnings), each fix
shown once beside every check it repairs; then the passes; the skipped checks fold into
one row per reason. Every string that reaches the page (summaries, evidence, fixes, all
taken from the machine) is escaped, so a hostile package name or GPU name cannot inject
markup or script.
"""

from __future__ import annotations

import html
import json
from typing import Any, Dict, List, Optional

from merlin_doctor.render import problems, safe_text, skip_groups

#: status -> (mark, colour); inline styles only, since notebook front ends strip <style> blocks.
MARKS = {
    "pass": ("✓", "#1a7f37"),
    "warn": ("!", "#9a6700"),
    "fail": ("✗", "#cf222e"),
    "skip": ("–", "#6e7781"),
    "error": ("E", "#8250df"),
}
CELL = "text-align:left;vertical-align:top;padding:3px 8px;border-bottom:1px solid #d0d7de"
FOLD = "cursor:pointer;color:#57606a"


def _text(value: Any) -> str:
    return html.escape(safe_text(value), quote=True)


def _folded(title: str, body: str) -> str:
    return (
        f'<details><summary style="{FOLD}">{_text(title)}</summary>'
        f'<pre style="white-space:pre-wrap;margin:2px 0">{_text(body)}</pre></details>'
    )


def _row(status: str, check: str, verdict: str, fix: Optional[str] = None, rowspan: int = 1) -> str:
    """One row; `fix=None` leaves the fix cell to the row above (its rowspan covers this one)."""
    mark, colour = MARKS.get(status, ("?", "#000"))
    span = f' rowspan="{rowspan}"' if rowspan > 1 else ""
    fix_cell = "" if fix is None else f'<td style="{CELL}"{span}>{fix}</td>'
    return (
        f'<tr data-status="{_text(status)}">'
        f'<td style="{CELL};color:{colour};font-weight:bold" title="{_text(status)}">{mark}</td>'
        f'<td style="{CELL}">{check}</td><td style="{CELL}">{verdict}</td>{fix_cell}</tr>'
    )


def _verdict_cell(v: Dict[str, Any]) -> str:
    evidence = ""
    if v.get("evidence"):
        evidence = _folded("evidence", json.dumps(v["evidence"], indent=1, default=str, sort_keys=True))
    return f"{_text(v['summary'])}{evidence}"


def _problem_rows(found: List[Dict[str, Any]]) -> List[str]:
    """Problem rows in order; rows sharing a fix are adjacent and share one fix cell."""
    rows = []
    for i, v in enumerate(found):
        fix = v.get("fix")
        shared = fix and i > 0 and found[i - 1].get("fix") == fix
        span = 1
        while fix and i + span < len(found) and found[i + span].get("fix") == fix:
            span += 1
        cell = None if shared else (f'<code style="white-space:pre-wrap">{_text(fix)}</code>' if fix else "")
        rows.append(_row(v["status"], f"<code>{_text(v['id'])}</code>", _verdict_cell(v), cell, span))
    return rows


def _skip_rows(verdicts: List[Dict[str, Any]]) -> List[str]:
    """One row per reason; a reason shared by several checks names them folded."""
    by_id = {v["id"]: v for v in verdicts}
    rows = []
    for reason, ids in skip_groups(verdicts).items():
        if len(ids) == 1:
            rows.append(_row("skip", f"<code>{_text(ids[0])}</code>", _verdict_cell(by_id[ids[0]]), ""))
        else:
            rows.append(_row("skip", f"{len(ids)} checks", _text(reason) + _folded("which", "\n".join(ids)), ""))
    return rows


def report_table(doc: Dict[str, Any]) -> str:
    """The `check --json` document as an HTML table: a header line, then the problems, the passes
    and the folded skips."""
    counts = ", ".join(f"{n} {s}" for s, n in doc["summary"].items() if n)
    ok = doc["exit_code"] == 0
    verdict = (
        f'<span style="color:{MARKS["pass"][1]}">nothing failed</span>'
        if ok
        else f'<span style="color:{MARKS["fail"][1]}">something failed</span>'
    )
    head = "".join(f'<th style="{CELL}">{h}</th>' for h in ("", "check", "verdict", "fix"))
    verdicts = doc["verdicts"]
    passes = [
        _row("pass", f"<code>{_text(v['id'])}</code>", _verdict_cell(v), "") for v in verdicts if v["status"] == "pass"
    ]
    rows = "".join(_problem_rows(problems(verdicts)) + passes + _skip_rows(verdicts))
    return (
        f'<div class="merlin-doctor"><p><b>merlin-doctor</b> {_text(doc.get("doctor_version", ""))}: recipe '
        f"<code>{_text(doc['recipe'])}</code>, {verdict} ({_text(counts)})</p>"
        f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'
    )
