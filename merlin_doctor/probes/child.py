"""Entry point of an isolated probe: `python -m merlin_doctor.probes.child NAME`.

Reads the ProbeContext as JSON on stdin and prints the probe's facts as one JSON line.
"""
from __future__ import annotations

import json
import sys

from merlin_doctor.probes import ProbeContext, call_probe, probe_named


def main(argv: list) -> int:
    ctx = ProbeContext.from_dict(json.loads(sys.stdin.read() or "{}"))
    result = call_probe(probe_named(argv[1]), ctx)
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
