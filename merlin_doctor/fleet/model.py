"""What the fleet knows of each worker and each configuration: plain data, no dask."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

OK, DIED, TIMED_OUT, NO_DOCTOR, ERROR = "ok", "died", "timed-out", "no-doctor", "error"


@dataclass
class Node:
    """One worker: where it is, whether it answered, its facts and verdicts."""

    address: str
    status: str = OK
    detail: str = ""
    host: Optional[str] = None
    fingerprint: Optional[str] = None
    probed_by: Optional[str] = None  # the worker whose identical facts this one shares
    facts: Optional[Dict[str, Any]] = None
    verdicts: List[Any] = field(default_factory=list)  # Verdict objects, once judged
    config: Optional[str] = None  # the label of its configuration group
    outlier: bool = False


@dataclass
class Group:
    label: str
    signature: Dict[str, Any]
    members: List[str]
    majority: bool = False
    differs: List[Dict[str, Any]] = field(default_factory=list)  # {path, majority, value}
