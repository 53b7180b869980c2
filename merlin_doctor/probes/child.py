"""Entry point of isolated probes: `python -m merlin_doctor.probes.child NAME...`.

Reads the ProbeContext as JSON on stdin, runs each probe in a fork of its own with the
context's timeout, and prints `{"results": {NAME: facts}}` as one JSON line.
"""

from __future__ import annotations

import json
import os
import sys

from merlin_doctor.probes.context import ProbeContext
from merlin_doctor.probes.registry import probe_named
from merlin_doctor.probes.scheduler import collect_each


def main(argv: list) -> int:
    # `python -m` put the working directory first on sys.path; the env's Python has no such
    # entry, so the probes must not read it (a checkout's *.egg-info is not installed in the env).
    if sys.path and sys.path[0] == os.getcwd():
        del sys.path[0]
    ctx = ProbeContext.from_dict(json.loads(sys.stdin.read() or "{}"))
    results = collect_each([probe_named(name) for name in argv[1:]], ctx)
    sys.stdout.write(json.dumps({"results": results}, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
