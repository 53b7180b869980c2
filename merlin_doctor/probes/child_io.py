"""The child side of the JSON-on-stdout protocol that `isolate.run_json_command` reads.

Heavy children (TensorFlow facts, PLE training) run under the target environment's
Python with only the standard library guaranteed, so this module uses nothing else.
The protocol: one JSON object as the last line of stdout (or in `--out`), progress
as `PROGRESS {json}` lines on stderr, `STEP_PREFIX name` lines on stderr where a step
starts (so the parent can tell which log lines each step caused), and everything else
on stderr is log evidence.
"""

from __future__ import annotations

import json
import math
import os
import sys
import traceback
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional

from merlin_doctor.atomic import write_atomic
from merlin_doctor.probes.isolate import PROGRESS_PREFIX

#: A line on stderr that starts a step: every log line after it, up to the next, is that step's.
STEP_PREFIX = "MERLIN-DOCTOR-STEP "


def mark_step(name: str) -> None:
    """Start step `name` in the log. Flushed first, so TensorFlow's C++ lines (written to
    fd 2 directly) that the step causes come after the marker, never before it."""
    sys.stdout.flush()
    sys.stderr.write(f"{STEP_PREFIX}{name}\n")
    sys.stderr.flush()


def headline(exc_type: str, message: str) -> str:
    """One line for an exception: its type and the first line of its message, which is the
    traceback's last line whenever the message has one line (protobuf's has seven)."""
    first = next((line.strip() for line in message.splitlines() if line.strip()), "")
    return f"{exc_type}: {first}" if first else exc_type


class Progress:
    """Writes `PROGRESS {json}` lines to stderr as work happens, when enabled."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, event: str, **fields: Any) -> None:
        if self.enabled:
            sys.stderr.write(PROGRESS_PREFIX + json.dumps({"event": event, **fields}) + "\n")
            sys.stderr.flush()


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send fd 1 to stderr while libraries run, so a stray print cannot corrupt the JSON."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def finite(value: Any) -> Any:
    """The value with NaN and infinities replaced by None, recursively: strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def error_data(exc: BaseException, stage: Optional[str] = None) -> Dict[str, Any]:
    """An exception as data: its type, message, where it happened and the traceback's tail."""
    data: Dict[str, Any] = {
        "type": type(exc).__name__,
        "message": str(exc).strip()[:2000],
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:],
    }
    if stage is not None:
        data["stage"] = stage
    return data


def emit(result: Dict[str, Any], out: Optional[str]) -> None:
    """Write the result as one line of strict JSON to stdout, or atomically to `out`."""
    text = json.dumps(finite(result), default=str, allow_nan=False) + "\n"
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_atomic(out, text.encode())


def hard_exit(code: int) -> None:
    """Exit without interpreter teardown: TensorFlow/CUDA teardown can crash or hang after
    the result is written, which the parent would read as a crashed child."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
