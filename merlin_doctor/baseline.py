"""What changed since a known-good snapshot: `merlin-doctor check --baseline GOOD.json`. Pure.

The diff walks any probe's facts (factpaths keys list items by name, so a new library
does not shift every path) and leaves out timings, logs and run-time measurements. A
subtree that appeared or vanished (a package, a library copy) is one change, not one per leaf.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence

from merlin_doctor.factpaths import join, keyed, matches, pruned, rules
from merlin_doctor.redact import Identity, redact


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any
    kind: str = "changed"  # or "added", "removed": the path exists on one side only

    def to_dict(self) -> Dict[str, Any]:
        return {"path": self.path, "before": self.before, "after": self.after, "kind": self.kind}


def diff(before: Dict[str, Any], after: Dict[str, Any], ignore: Optional[Sequence[str]] = None) -> List[Change]:
    """Changes between two snapshots' probes; only probes both collected are compared."""
    ignore = rules()["ignore"] if ignore is None else ignore
    old, new = before.get("probes", {}), after.get("probes", {})
    changes: List[Change] = []
    for name in new:
        if name in old and not matches(name, ignore):
            _walk(keyed(old[name]), keyed(new[name]), name, ignore, changes)
    return changes


def probes_to_compare(baseline_probes: Iterable[str], fast: bool = False) -> List[str]:
    """The baseline's probes this doctor knows, the slow ones left out with --fast."""
    from merlin_doctor.probes.registry import PROBES

    known = {p.name: p for p in PROBES}
    return [n for n in baseline_probes if n in known and not (fast and known[n].slow)]


def compare(good: Dict[str, Any], current: Dict[str, Any], identity: Identity = Identity()) -> List[Change]:
    """`diff`, after redacting the current facts like the baseline when it is a shared report."""
    if (good.get("meta") or {}).get("redacted"):
        current = redact(current, identity).data
    return diff(good, current)


def _walk(old: Any, new: Any, path: str, ignore: Sequence[str], out: List[Change]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(new) + [k for k in old if k not in new]:
            sub = join(path, key)
            if matches(sub, ignore):
                continue
            if key not in old:
                out.append(Change(sub, None, pruned(new[key], sub, ignore), "added"))
            elif key not in new:
                out.append(Change(sub, pruned(old[key], sub, ignore), None, "removed"))
            else:
                _walk(old[key], new[key], sub, ignore, out)
    elif old != new:
        out.append(Change(path, pruned(old, path, ignore), pruned(new, path, ignore)))


def _short(value: Any, width: int = 100) -> str:
    """Strings whole (a changed search path must show its end), text as a line count, data cut short."""
    if isinstance(value, str):
        return f"({value.count(chr(10)) + 1} lines of text)" if "\n" in value.strip() else value
    text = "-" if value is None else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def change_lines(changes: List[Change]) -> List[str]:
    """One line per change: `path: before → after`, `added`/`removed` for whole subtrees."""
    lines = []
    for c in changes:
        if c.kind == "added":
            lines.append(f"{c.path}: added {_short(c.after)}")
        elif c.kind == "removed":
            lines.append(f"{c.path}: removed (was {_short(c.before)})")
        else:
            lines.append(f"{c.path}: {_short(c.before)} → {_short(c.after)}")
    return lines
