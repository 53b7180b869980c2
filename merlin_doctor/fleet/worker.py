"""The code that runs inside the Dask workers: where this worker runs, and its facts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Optional

from merlin_doctor import __version__


def worker_fingerprint() -> Dict[str, Any]:
    """Where this worker runs; workers with equal `key` would collect identical facts."""
    import hashlib
    import socket
    import sys

    from distributed import get_worker

    host = socket.gethostname()
    scratch = get_worker().local_directory  # each worker puts its own scratch directory on sys.path
    path = [p for p in sys.path if p != scratch]
    identity = json.dumps([host, sys.executable, path, sorted(os.environ.items())])
    return {
        "host": host,
        "pid": os.getpid(),
        "python": sys.executable,
        "doctor_version": __version__,
        "key": hashlib.sha256(identity.encode()).hexdigest()[:16],
    }


def worker_facts(recipe: Optional[str], probe_timeout: float, fast: bool) -> Dict[str, Any]:
    """Every probe's facts on this worker, as `merlin-doctor facts` would collect them here."""
    from merlin_doctor.facts import Facts
    from merlin_doctor.probes.context import ProbeContext

    facts = Facts.live(ProbeContext(recipe_path=recipe, timeout=probe_timeout))
    facts.collect_all(fast=fast)
    return facts.to_dict()


def recipe_reference(recipe_path: str, recipe_name: str) -> str:
    """A built-in recipe by name (its path differs per install), any other by absolute path."""
    from merlin_doctor.recipe import RECIPES_DIR

    path = Path(recipe_path).resolve()
    return recipe_name if path.parent == Path(RECIPES_DIR).resolve() else str(path)
