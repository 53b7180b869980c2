"""`merlin-doctor fleet`: the probes on every worker of a Dask cluster, judged here.

`worker` runs inside the workers, `cluster` talks to the cluster, `judge` is pure (verdicts
per worker, configurations, outliers), `table` renders the document. dask is imported only
inside functions, so importing this package costs nothing.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional


def run_fleet(
    scheduler: Optional[str],
    local: Optional[int],
    recipe: Optional[str],
    timeout: float,
    fast: bool = False,
    cpu_ok: bool = False,
    every_worker: bool = False,
    progress: Callable[[str], None] = lambda message: None,
) -> Dict[str, Any]:
    """Connect (or start a local cluster), probe the workers, judge centrally: the fleet document."""
    from merlin_doctor.checks import all_checks
    from merlin_doctor.fleet.cluster import connect, probe_workers
    from merlin_doctor.fleet.judge import group, judge
    from merlin_doctor.fleet.table import document
    from merlin_doctor.fleet.worker import recipe_reference
    from merlin_doctor.options import CheckOptions
    from merlin_doctor.recipe import load_recipe
    from merlin_doctor.runner import select_checks

    loaded = load_recipe(recipe)
    checks = select_checks(all_checks(), skip=["container"])  # container checks judge a host, not a worker
    started = time.perf_counter()
    progress(f"starting {local} local Dask worker(s) ..." if local else f"connecting to {scheduler} ...")
    with connect(scheduler, local, timeout) as (client, where):
        connected = time.perf_counter()
        progress(f"probing the workers ({where}) ...")
        nodes = probe_workers(
            client, recipe_reference(loaded.path, loaded.name), timeout, fast=fast, every_worker=every_worker
        )
        probed = time.perf_counter()
    closed = time.perf_counter()
    judge(nodes, checks, loaded, CheckOptions(fast=fast, cpu_ok=cpu_ok))
    timings = {
        "cluster_start_s": connected - started,
        "probe_s": probed - connected,
        "cluster_close_s": closed - probed,
        "judge_s": time.perf_counter() - closed,
        "total_s": time.perf_counter() - started,
    }
    return document(nodes, group(nodes), loaded.name, where, timings)
