"""`merlin-doctor report`: one shareable JSON file, redacted, judged like a live snapshot.

The file holds the facts, the verdicts, the package list and a Markdown summary (the
`markdown` field, ready to paste into an issue). Everything in it, Markdown included, is
built from the redacted document, so no raw value can slip into the summary. It is also a
snapshot: `check --from` and `check --baseline` read its `facts`. Building is pure; only
`write_report` touches the disk.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Tuple

from merlin_doctor.atomic import replaceable, write_output
from merlin_doctor.errors import InputError
from merlin_doctor.factpaths import headline
from merlin_doctor.facts import json_bytes
from merlin_doctor.redact import Identity, Redaction, redact
from merlin_doctor.render import SYMBOLS, check_document, fix_groups, problems, safe_text, skip_groups
from merlin_doctor.verdict import Status, Verdict

KIND = "merlin-doctor-report"


def _object(value: Any) -> Dict[str, Any]:
    """A snapshot's object, or an empty one where a saved file holds something else."""
    return value if isinstance(value, dict) else {}


def package_list(facts: Dict[str, Any]) -> List[Dict[str, str]]:
    dists = _object(_object(_object(facts.get("probes")).get("packages")).get("distributions"))
    rows = ({"name": _object(d).get("name", key), "version": _object(d).get("version")} for key, d in dists.items())
    return sorted(rows, key=lambda p: str(p["name"]).lower())


def build_report(
    facts: Dict[str, Any],
    verdicts: List[Verdict],
    recipe: str,
    exit_code: int,
    identity: Identity,
    created_at: str,
    keep_words: Iterable[str] = (),
) -> Tuple[Dict[str, Any], Redaction]:
    """The redacted report document and what redaction took out (`keep_words`: see redact.redact)."""
    checked = check_document(verdicts, facts, recipe, exit_code)
    content = {
        "summary": checked["summary"],
        "verdicts": checked["verdicts"],
        "packages": package_list(facts),
        "facts": checked["facts"],
    }
    own_words = {part for v in verdicts for part in v.id.split(".")}  # `gpu` of gpu.nvml stays, whoever is called gpu
    redaction = redact(content, identity, keep_words=set(keep_words) | own_words)
    doc = {
        "schema_version": checked["schema_version"],
        "kind": KIND,
        "doctor_version": checked["doctor_version"],
        "created_at": created_at,
        "recipe": recipe,
        "exit_code": exit_code,
        "redaction": dict(redaction.summary(), note=redaction.reminder()),
        "markdown": "",
    }
    doc.update(redaction.data)  # the facts last: the file reads top-down
    doc["facts"].setdefault("meta", {})["redacted"] = True
    doc["markdown"] = markdown(doc)
    return doc, redaction


def _cell(text: Any) -> str:
    return safe_text(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Tuple[str, ...], rows: List[Tuple[Any, ...]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _check_rows(verdicts: List[Dict[str, Any]]) -> List[Tuple[str, str, str]]:
    """Problems first, then passes, then one row per reason for the skipped checks."""
    mark = lambda status: SYMBOLS[Status(status)]  # noqa: E731
    rows = [(mark(v["status"]), f"`{v['id']}`", v["summary"]) for v in problems(verdicts)]
    rows += [(mark("pass"), f"`{v['id']}`", v["summary"]) for v in verdicts if v["status"] == "pass"]
    for reason, ids in skip_groups(verdicts).items():
        check = f"`{ids[0]}`" if len(ids) == 1 else f"{len(ids)} checks"
        rows.append((mark("skip"), check, reason if len(ids) == 1 else f"{reason}: {', '.join(ids)}"))
    return rows


def markdown(doc: Dict[str, Any]) -> str:
    """A readable summary of a (redacted) report document, for an issue or a support thread."""
    counts = ", ".join(f"{n} {status}" for status, n in doc["summary"].items() if n)
    lines = [
        "# merlin-doctor report",
        "",
        f"merlin-doctor {doc['doctor_version']} · recipe `{doc['recipe']}` · {doc['created_at']} · {counts}",
        "",
    ]
    machine = headline(doc["facts"].get("probes", {}))
    if machine:
        lines += ["## Machine", ""] + _table(("", ""), machine) + [""]
    verdicts = doc["verdicts"]
    lines += ["## Checks", ""] + _table(("", "check", "result"), _check_rows(verdicts)) + [""]
    fixes = fix_groups(verdicts)
    if fixes:
        lines += (
            ["## To fix", ""]
            + [f"- {', '.join(v['id'] for v in group)}: {_cell(fix)}" for fix, group in fixes.items()]
            + [""]
        )
    packages = doc["packages"]
    lines += ["## Packages", "", f"<details><summary>{len(packages)} Python packages</summary>", ""]
    lines += _table(("package", "version"), [(p["name"], p["version"]) for p in packages]) + ["", "</details>", ""]
    lines += [
        "## Redaction",
        "",
        doc["redaction"]["note"] + ". Environment variables are kept only from the "
        "allowlist in merlin_doctor/knowledge/redaction.yml.",
        "",
    ]
    return "\n".join(lines)


def write_report(path: str, doc: Dict[str, Any], force: bool = False) -> None:
    """Write it (atomically, or into a device or FIFO); replace an existing file only if it is an
    earlier report, or with --force."""
    if not force and not replaceable(path, _is_report):
        raise InputError(
            "the file exists and is not a merlin-doctor report; choose another -o FILE or add --force to replace it",
            path,
        )
    write_output(path, json_bytes(doc))


def _is_report(data: bytes) -> bool:
    try:
        existing = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return isinstance(existing, dict) and existing.get("kind") == KIND
