"""Verdicts as one self-contained HTML table (Jupyter's `_repr_html_`). Shows, decides nothing.

Every string that reaches the page (summaries, evidence, fixes, all taken from the machine)
is escaped, so a hostile package name or GPU name cannot inject markup or script.
"""
from __future__ import annotations

import html
import json
from typing import Any, Dict

from merlin_doctor.render import safe_text

#: status -> (mark, colour); inline styles only, since notebook front ends strip <style> blocks.
MARKS = {"pass": ("✓", "#1a7f37"), "warn": ("!", "#9a6700"), "fail": ("✗", "#cf222e"),
         "skip": ("–", "#6e7781"), "error": ("E", "#8250df")}
CELL = "text-align:left;vertical-align:top;padding:3px 8px;border-bottom:1px solid #d0d7de"


def _text(value: Any) -> str:
    return html.escape(safe_text(value), quote=True)


def _row(v: Dict[str, Any]) -> str:
    mark, colour = MARKS.get(v["status"], ("?", "#000"))
    evidence = ""
    if v.get("evidence"):
        dump = json.dumps(v["evidence"], indent=1, default=str, sort_keys=True)
        evidence = (f'<details><summary style="cursor:pointer;color:#57606a">evidence</summary>'
                    f'<pre style="white-space:pre-wrap;margin:2px 0">{_text(dump)}</pre></details>')
    fix = f'<code style="white-space:pre-wrap">{_text(v["fix"])}</code>' if v.get("fix") else ""
    return (f'<tr data-status="{_text(v["status"])}">'
            f'<td style="{CELL};color:{colour};font-weight:bold" title="{_text(v["status"])}">{mark}</td>'
            f'<td style="{CELL}"><code>{_text(v["id"])}</code></td>'
            f'<td style="{CELL}">{_text(v["summary"])}{evidence}</td>'
            f'<td style="{CELL}">{fix}</td></tr>')


def report_table(doc: Dict[str, Any]) -> str:
    """The `check --json` document as an HTML table: a header line, then one row per verdict."""
    counts = ", ".join(f"{n} {s}" for s, n in doc["summary"].items() if n)
    ok = doc["exit_code"] == 0
    verdict = (f'<span style="color:{MARKS["pass"][1]}">nothing failed</span>' if ok
               else f'<span style="color:{MARKS["fail"][1]}">something failed</span>')
    head = "".join(f'<th style="{CELL}">{h}</th>' for h in ("", "check", "verdict", "fix"))
    rows = "".join(_row(v) for v in doc["verdicts"])
    return (f'<div class="merlin-doctor"><p><b>merlin-doctor</b> {_text(doc.get("doctor_version", ""))}: recipe '
            f'<code>{_text(doc["recipe"])}</code>, {verdict} ({_text(counts)})</p>'
            f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>')
