"""Where installed distributions' metadata lives: read straight from sys.path.

Faster than importlib.metadata's finders, which parse far more than the doctor needs
and took a large share of `check --fast` in an env holding TensorFlow and Merlin.
"""

from __future__ import annotations

import os
import sys
from typing import Iterator, List, Tuple


def metadata_dirs() -> Iterator[Tuple[str, str]]:
    """(sys.path entry, *.dist-info or *.egg-info directory), in import order."""
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                yield entry or ".", os.path.join(entry or ".", name)


def dirs_with_entry_points(group: str) -> List[str]:
    """*.dist-info directories whose entry_points.txt names `group` (plugins, found without
    handing every distribution to importlib.metadata)."""
    found = []
    for _, info_dir in metadata_dirs():
        try:
            with open(os.path.join(info_dir, "entry_points.txt"), encoding="utf-8") as fh:
                if f"[{group}]" in fh.read():
                    found.append(info_dir)
        except OSError:
            continue
    return found
