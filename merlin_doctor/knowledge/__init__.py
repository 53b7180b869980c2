"""Knowledge tables: compatibility facts and thresholds as data, each row with its source.

Logic never hard-codes a version number or threshold; it reads them from here.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

KNOWLEDGE_DIR = Path(__file__).parent


@functools.cache
def load(name: str) -> Dict[str, Any]:
    """Load `knowledge/<name>.yml`; every table must say where its facts come from."""
    path = KNOWLEDGE_DIR / f"{name}.yml"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=loader)
    if not isinstance(data, dict) or "source" not in data:
        raise ValueError(f"{path}: a knowledge table needs a top-level 'source'")
    return data


def tensorflow_series(version: Optional[str]) -> Optional[str]:
    """`2.10` for a version (`2.10.1`) or a recipe pin (`==2.10.*`); None when it names none."""
    m = re.search(r"(\d+)\.(\d+)", version or "")
    return f"{m.group(1)}.{m.group(2)}" if m else None


def _series_key(series: str) -> tuple:
    return tuple(int(p) for p in series.split("."))


def tensorflow_build(version: Optional[str]) -> Dict[str, Any]:
    """What a TensorFlow series was built against, for a version (`2.10.1`) or a recipe pin (`==2.10.*`).

    A series newer or older than the table gets the nearest row on its side, marked
    `exact: False`, so a caller can say it is judging by a neighbour's build.
    """
    table = load("tf_builds")
    rows = table["tensorflow"]
    wanted = tensorflow_series(version) or table["default_series"]
    if wanted in rows:
        series, exact = wanted, True
    else:
        ordered = sorted(rows, key=_series_key)
        older = [s for s in ordered if _series_key(s) <= _series_key(wanted)]
        series, exact = (older[-1] if older else ordered[0]), False
    row = dict(rows[series], series=series, exact=exact)
    row["min_compute_capability"] = min_compute_capability(row["compute_capabilities"])
    return row


def min_compute_capability(targets: Any) -> str:
    """The oldest GPU a build runs on: its lowest `sm_XY` / `compute_XY` target, as `X.Y`."""
    archs = [int(t.partition("_")[2]) for t in targets if t.partition("_")[2].isdigit()]
    low = min(archs)
    return f"{low // 10}.{low % 10}"
