"""The fleet's result: one JSON document (`fleet --json`) and the human table built from it. Pure."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple

from merlin_doctor import __version__
from merlin_doctor.factpaths import headline, show
from merlin_doctor.fleet.model import OK, Group, Node
from merlin_doctor.render import SYMBOLS, safe_text
from merlin_doctor.verdict import Status, plural

SCHEMA_VERSION = 1
PROBLEM_STATUSES = (Status.FAIL, Status.ERROR, Status.WARN)


def _counts(node: Node) -> Dict[str, int]:
    counts = {s.value: 0 for s in Status}
    for v in node.verdicts:
        counts[v.status.value] += 1
    return counts


def _worker(node: Node) -> Dict[str, Any]:
    return {
        "address": node.address,
        "host": node.host,
        "status": node.status,
        "detail": node.detail,
        "config": node.config,
        "outlier": node.outlier,
        "probed_by": node.probed_by,
        "summary": _counts(node) if node.status == OK else None,
        "problems": [
            {"id": v.id, "status": v.status.value, "summary": v.summary, "fix": v.fix}
            for v in node.verdicts
            if v.status in PROBLEM_STATUSES
        ],
    }


def _configuration(g: Group, facts: Mapping[str, Any]) -> Dict[str, Any]:
    rows = headline(facts.get("probes", {}))
    return {
        "label": g.label,
        "workers": g.members,
        "majority": g.majority,
        "headline": [{"label": label, "value": value} for label, value in rows],
        "differs": g.differs,
        "signature": g.signature,
    }


def document(
    nodes: List[Node], groups: List[Group], recipe: str, cluster: str, timings: Dict[str, float]
) -> Dict[str, Any]:
    by_address = {n.address: n for n in nodes}
    unreachable = [n.address for n in nodes if n.status != OK]
    failing = [n.address for n in nodes if any(v.status.failed for v in n.verdicts)]
    outliers = [n.address for n in nodes if n.outlier]
    no_majority = len(groups) > 1 and not groups[0].majority
    bad = unreachable or failing or outliers or no_majority
    return {
        "schema_version": SCHEMA_VERSION,
        "doctor_version": __version__,
        "recipe": recipe,
        "cluster": cluster,
        "exit_code": 1 if bad else 0,
        "summary": {
            "workers": len(nodes),
            "answered": len(nodes) - len(unreachable),
            "probed": len({n.probed_by or n.address for n in nodes if n.status == OK}),
            "configurations": len(groups),
            "majority": groups[0].label if groups and groups[0].majority else None,
            "outliers": outliers,
            "unreachable": unreachable,
            "failing": failing,
        },
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "configurations": [_configuration(g, by_address[g.members[0]].facts or {}) for g in groups],
        "workers": [_worker(n) for n in sorted(nodes, key=lambda n: n.address)],
    }


def _columns(rows: Sequence[Tuple[str, ...]]) -> List[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[-1] for r in rows]


def _config_lines(doc: Dict[str, Any]) -> List[str]:
    configs = doc["configurations"]
    rows = []
    for c in configs:
        role = "majority" if c["majority"] else ("OUTLIER" if configs[0]["majority"] else "no majority")
        if c is configs[0]:
            what = " · ".join(f"{h['label']} {h['value']}" for h in c["headline"]) or "(no headline facts)"
        else:
            what = f"differs from {configs[0]['label']}: " + "; ".join(
                f"{d['path']} {show(d['value'])} ({configs[0]['label']}: {show(d['majority'])})" for d in c["differs"]
            )
        rows.append((c["label"], plural(len(c["workers"]), "worker"), role, safe_text(what)))
    return ["Configurations"] + (_columns(rows) if rows else ["  (no worker answered)"])


def _worker_lines(doc: Dict[str, Any]) -> List[str]:
    rows = [("worker", "host", "config", "pass", "warn", "fail", "result")]
    for w in doc["workers"]:
        if w["status"] != OK:
            rows.append((w["address"], w["host"] or "?", "-", "", "", "", f"{w['status'].upper()}: {w['detail']}"))
            continue
        s = w["summary"]
        failed = [p["id"] for p in w["problems"] if p["status"] in ("fail", "error")]
        shown = ", ".join(failed[:3]) + (f" and {len(failed) - 3} more" if len(failed) > 3 else "")
        result = f"failed: {shown}" if failed else "ok"
        if w["probed_by"]:
            result += f" (same environment as {w['probed_by']})"
        if w["detail"]:  # e.g. another merlin-doctor version there
            result += f"; {w['detail']}"
        rows.append(
            (
                w["address"],
                w["host"] or "?",
                w["config"] + (" OUTLIER" if w["outlier"] else ""),
                str(s["pass"]),
                str(s["warn"]),
                str(s["fail"] + s["error"]),
                safe_text(result),
            )
        )
    return ["Workers"] + _columns(rows)


def _where(addresses: List[str], doc: Dict[str, Any]) -> str:
    """`config A` when whole configurations have it, else the workers' addresses."""
    members = {c["label"]: set(c["workers"]) for c in doc["configurations"]}
    whole = [label for label, m in members.items() if m <= set(addresses)]
    covered = set().union(*(members[label] for label in whole)) if whole else set()
    return f"config {', '.join(whole)}" if covered == set(addresses) else ", ".join(addresses)


def _problem_lines(doc: Dict[str, Any], symbols: Mapping[Status, str]) -> List[str]:
    """Each problem once (a check with the same fix) with the workers that have it, then each fix
    once (as `check` does). Workers whose fixes differ (another env path) get a line each."""
    found: Dict[Tuple[str, str], Dict[str, Any]] = {}
    for w in doc["workers"]:
        for p in w["problems"]:
            found.setdefault((p["id"], p["fix"] or ""), dict(p, workers=[]))["workers"].append(w["address"])
    ordered = sorted(found.values(), key=lambda p: p["status"] == "warn")  # stable: failures first
    lines = [
        f"  [{symbols[Status(p['status'])]}] {p['id']} on {plural(len(p['workers']), 'worker')} "
        f"({_where(p['workers'], doc)}): {safe_text(p['summary'])}"
        for p in ordered
    ]
    lines += [
        f"  [{symbols[Status.FAIL]}] {w['address']} {w['status']}: {safe_text(w['detail'])}"
        for w in doc["workers"]
        if w["status"] != OK
    ]
    fixes: Dict[str, List[Dict[str, Any]]] = {}
    for p in ordered:
        if p["fix"]:
            fixes.setdefault(p["fix"], []).append(p)
    fix_lines = []
    for fix, problems in fixes.items():
        worst = Status.WARN if all(p["status"] == "warn" for p in problems) else Status.FAIL
        fix_lines.append(f"  [{symbols[worst]}] {', '.join(p['id'] for p in problems)}: {safe_text(fix)}")
    return (["Problems"] + lines if lines else []) + (["", "To fix:"] + fix_lines if fix_lines else [])


def table_lines(doc: Dict[str, Any], symbols: Mapping[Status, str] = SYMBOLS) -> List[str]:
    s = doc["summary"]
    took = doc["timings"].get("probe_s")
    head = (
        f"merlin-doctor fleet: {plural(s['workers'], 'worker')} ({doc['cluster']}), recipe {doc['recipe']}; "
        f"{s['answered']} answered, {s['probed']} distinct environment(s) probed"
        + (f" in {took:.1f} s" if took is not None else "")
    )
    lines = [head, ""] + _config_lines(doc) + [""] + _worker_lines(doc)
    problems = _problem_lines(doc, symbols)
    return lines + ([""] + problems if problems else [])
