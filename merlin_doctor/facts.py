"""The Facts snapshot: every probe's data, collected live or loaded from a saved file.

Live facts are collected lazily, the first time a check asks for a probe, so verdicts
stream out while slow probes have not even started. `check --from FILE` judges a saved
snapshot with no probing at all.
"""

from __future__ import annotations

import datetime
import json
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from merlin_doctor import __version__
from merlin_doctor.atomic import replaceable, write_atomic, write_output
from merlin_doctor.errors import InputError
from merlin_doctor.probes.context import ProbeContext
from merlin_doctor.probes.registry import PROBES, Probe, probe_named
from merlin_doctor.probes.scheduler import run_probe, runs_isolated, start_isolated

SCHEMA_VERSION = 1
#: Real snapshots nest about eight levels; anything far deeper is refused before a reader recurses.
MAX_DEPTH = 64
#: A snapshot with every package of a large env is a few megabytes.
MAX_SNAPSHOT_BYTES = 64 << 20


class Facts:
    def __init__(
        self,
        probes: Optional[Dict[str, Dict[str, Any]]] = None,
        meta: Optional[Dict[str, Any]] = None,
        context: Optional[ProbeContext] = None,
        on_probe: Optional[Callable[[Probe], None]] = None,
    ):
        self.probes: Dict[str, Dict[str, Any]] = dict(probes or {})
        self.meta = dict(meta or {})
        self.context = context  # None: a saved snapshot, nothing may be probed
        self.on_probe = on_probe
        self._pending: Dict[str, threading.Thread] = {}

    @classmethod
    def live(cls, context: ProbeContext, on_probe: Optional[Callable[[Probe], None]] = None) -> Facts:
        meta = {
            "doctor_version": __version__,
            "collected_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        return cls(meta=meta, context=context, on_probe=on_probe)

    def prefetch(self, names: Iterable[str]) -> None:
        """Start the isolated probes among `names` in the background right away.

        Their child processes then overlap with the in-process probes and the checks
        instead of adding their start-up time to the run.
        """
        if self.context is None:
            return
        todo = [probe_named(n) for n in names]
        todo = [
            p
            for p in todo
            if runs_isolated(p, self.context) and p.name not in self.probes and p.name not in self._pending
        ]
        if not todo:
            return
        for probe in todo:
            if self.on_probe:
                self.on_probe(probe)
        wait = start_isolated(todo, self.context)  # started here: a fork is safe only while no other thread runs
        thread = threading.Thread(target=lambda: self.probes.update(wait()), daemon=True)
        for probe in todo:
            self._pending[probe.name] = thread
        thread.start()

    def __getitem__(self, name: str) -> Dict[str, Any]:
        pending = self._pending.pop(name, None)
        if pending is not None:
            pending.join()
        if name not in self.probes:
            if self.context is None:
                return {"error": f"the snapshot holds no {name!r} facts", "missing": True}
            probe = probe_named(name)
            if self.on_probe:
                self.on_probe(probe)
            self.probes[name] = run_probe(probe, self.context)
        return self.probes[name]

    def collect(self, names: Iterable[str]) -> None:
        names = list(names)
        self.prefetch(names)
        for name in names:
            self[name]

    def collect_all(self, fast: bool = False) -> None:
        self.collect(p.name for p in PROBES if not (fast and p.slow))

    def to_dict(self) -> Dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "meta": self.meta, "probes": self.probes}

    def save(self, path: str, force: bool = False) -> None:
        """Write the snapshot to a file the user named; replace another file only with `force`."""
        if not force and not replaceable(path, is_snapshot):
            raise InputError(
                "the file exists and is not a merlin-doctor facts snapshot; choose another -o FILE "
                "or add --force to replace it",
                path,
            )
        write_output(path, json_bytes(self.to_dict()))

    @classmethod
    def load(cls, path: str) -> Facts:
        """Load a snapshot (`facts -o`, `check --json` output, or a report); errors are InputErrors."""
        try:
            with open(path, "rb") as fh:
                raw = fh.read(MAX_SNAPSHOT_BYTES + 1)  # bounded: `--from /dev/zero` must not eat the memory
            if len(raw) > MAX_SNAPSHOT_BYTES:
                raise InputError(f"not a facts snapshot: larger than {MAX_SNAPSHOT_BYTES >> 20} MiB", path)
            data = json.loads(raw)
        except OSError as exc:
            raise InputError(f"cannot read the snapshot: {exc.strerror or exc}", path) from None
        except RecursionError:
            raise InputError(f"not a facts snapshot: nested more than {MAX_DEPTH} levels deep", path) from None
        except (ValueError, UnicodeDecodeError) as exc:
            line = getattr(exc, "lineno", None)
            raise InputError(f"not a JSON facts snapshot: {_cut(str(exc))}", path, line) from None
        if isinstance(data, dict) and isinstance(data.get("facts"), dict):
            data = data["facts"]  # the JSON output of `check` embeds its facts
        if not isinstance(data, dict) or not isinstance(data.get("probes"), dict):
            raise InputError(
                "not a facts snapshot (no 'probes' object); make one with `merlin-doctor facts -o FILE`", path
            )
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise InputError(
                f"snapshot schema_version {_cut(repr(version))} is not supported (this doctor reads {SCHEMA_VERSION})",
                path,
            )
        _check_shape(data, path)
        return cls(data["probes"], data.get("meta"))


def _cut(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _check_shape(data: Dict[str, Any], path: str) -> None:
    """What every reader of a snapshot relies on: each probe's facts and `meta` are objects,
    and nothing nests deeper than MAX_DEPTH (walked iteratively: no recursion to exhaust)."""
    meta = data.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise InputError(f"not a facts snapshot: 'meta' is a {type(meta).__name__}, not an object", path)
    for name, facts in data["probes"].items():
        if not isinstance(facts, dict):
            raise InputError(
                f"not a facts snapshot: probe {_cut(name, 60)!r} holds a {type(facts).__name__}, not an object", path
            )
    stack: List[Tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputError(f"not a facts snapshot: nested more than {MAX_DEPTH} levels deep", path)
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=False, default=str) + "\n").encode("utf-8")


def write_json_atomic(path: str, data: Any) -> None:
    """Write JSON through a temp file and a rename, so a crash never leaves half a file."""
    write_atomic(path, json_bytes(data))


def is_snapshot(data: bytes) -> bool:
    """Whether a file's bytes are a facts snapshot (`facts -o` made it, or `check --json` did)."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return False
    if isinstance(doc, dict) and isinstance(doc.get("facts"), dict):
        doc = doc["facts"]
    return isinstance(doc, dict) and isinstance(doc.get("probes"), dict)
