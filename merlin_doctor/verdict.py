"""What a check concludes: a status, a one-line summary, the evidence and the fix."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence


class Status(str, enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"

    @property
    def failed(self) -> bool:
        """A failure or a check that could not judge: both make the run exit 1."""
        return self in (Status.FAIL, Status.ERROR)


@dataclass
class Finding:
    """What a check function returns; the runner adds the id and the timing."""

    status: Status
    summary: str
    evidence: Dict[str, Any] = field(default_factory=dict)
    fix: Optional[str] = None
    step: Optional[str] = None  # overrides the check's step when this finding needs another repair


Evidence = Optional[Dict[str, Any]]


def plural(count: int, noun: str) -> str:
    """`1 warning`, `2 warnings`, `3 addresses`, `1,204 lines`."""
    return f"{count:,} {noun}{'' if count == 1 else 'es' if noun.endswith('ss') else 's'}"


def listed(items: Sequence[str], limit: int) -> str:
    """The first `limit` items, and how many more: a summary never hides that it is partial."""
    shown: List[str] = list(items[:limit])
    more = len(items) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def passed(summary: str, evidence: Evidence = None) -> Finding:
    return Finding(Status.PASS, summary, dict(evidence or {}))


def warned(summary: str, fix: Optional[str] = None, step: Optional[str] = None, evidence: Evidence = None) -> Finding:
    return Finding(Status.WARN, summary, dict(evidence or {}), fix, step)


def failed(summary: str, fix: Optional[str] = None, step: Optional[str] = None, evidence: Evidence = None) -> Finding:
    return Finding(Status.FAIL, summary, dict(evidence or {}), fix, step)


def skipped(reason: str, evidence: Evidence = None) -> Finding:
    return Finding(Status.SKIP, reason, dict(evidence or {}))


@dataclass
class Verdict:
    """A finding attached to the check that made it, as reported and serialized."""

    id: str
    status: Status
    summary: str
    evidence: Dict[str, Any] = field(default_factory=dict)
    fix: Optional[str] = None
    step: Optional[str] = None
    duration_s: float = 0.0

    def __repr__(self) -> str:
        """One line (the evidence can be pages of data: `.evidence` shows it)."""
        return f"<Verdict {self.id} {self.status.value}: {self.summary}>"

    def to_dict(self) -> Dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status.value,
            "summary": self.summary,
            "evidence": self.evidence,
            "fix": self.fix,
            "step": self.step,
            "duration_s": round(self.duration_s, 4),
        }
