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


@functools.lru_cache(maxsize=None)
def load(name: str) -> Dict[str, Any]:
    """Load `knowledge/<name>.yml`; every table must say where its facts come from."""
    path = KNOWLEDGE_DIR / f"{name}.yml"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=loader)
    if not isinstance(data, dict) or "source" not in data:
        raise ValueError(f"{path}: a knowledge table needs a top-level 'source'")
    return data


def tensorflow_build(version: Optional[str]) -> Dict[str, Any]:
    """What a TensorFlow series was built against, for a version (`2.10.1`) or a recipe pin (`==2.10.*`)."""
    table = load("tf_builds")
    m = re.search(r"(\d+)\.(\d+)", version or "")
    series = f"{m.group(1)}.{m.group(2)}" if m else table["default_series"]
    return table["tensorflow"].get(series) or table["tensorflow"][table["default_series"]]
