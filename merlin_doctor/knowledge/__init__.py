"""Knowledge tables: compatibility facts and thresholds as data, each row with its source.

Logic never hard-codes a version number or threshold; it reads them from here.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Dict

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
