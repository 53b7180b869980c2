"""Top-1 accuracy of `merlin-doctor explain` on a corpus of labelled real log excerpts.

Usage: python benchmarks/explain_accuracy.py CORPUS.jsonl

Each line of the corpus is a JSON object with `id`, `category` (the expected headline id)
and `excerpt` (the log text). Prints the accuracy and every miss with what was ranked instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from merlin_doctor.explain import explain_text  # noqa: E402


def main(argv: List[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    rows = [json.loads(line) for line in Path(argv[0]).read_text(encoding="utf-8").splitlines() if line.strip()]
    misses = []
    for row in rows:
        ranked = [m.id for m in explain_text(row["excerpt"]).matches]
        if not ranked or ranked[0] != row["category"]:
            misses.append((row["id"], row["category"], ranked[:3]))
    right = len(rows) - len(misses)
    print(f"top-1 accuracy: {right}/{len(rows)} = {right / max(len(rows), 1):.1%}")
    for example, expected, ranked in misses:
        print(f"  miss {example}: expected {expected}, got {', '.join(ranked) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
