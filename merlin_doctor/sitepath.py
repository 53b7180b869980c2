"""Where installed distributions' metadata lives: read straight from sys.path.

Faster than importlib.metadata's finders, which parse far more than the doctor needs
and took a large share of `check --fast` in an env holding TensorFlow and Merlin.
"""

from __future__ import annotations

import os
import sys
from typing import Iterator, Tuple


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
