"""Talking to the Dask cluster: connect (or start a local one), pin each call to one worker,
and collect every worker's fingerprint and facts by one deadline, so a worker that dies or
hangs mid-probe becomes a row of the table, never a stuck doctor.

Workers that share a host, an interpreter and every environment variable (the workers of
one LocalCluster) would collect identical facts, so one of them probes for all (unless
`every_worker`); a LocalCUDACluster's workers differ in CUDA_VISIBLE_DEVICES, so each probes.
dask is imported only inside functions.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from merlin_doctor import __version__
from merlin_doctor.errors import InputError
from merlin_doctor.fleet.model import DIED, ERROR, NO_DOCTOR, OK, TIMED_OUT, Node
from merlin_doctor.fleet.worker import worker_facts, worker_fingerprint

POLL_S = 0.25
#: Our tasks go ahead of queued work on a busy cluster (not ahead of running work).
PRIORITY = 1000


def _local_gpus() -> int:
    from merlin_doctor.probes.context import ProbeContext
    from merlin_doctor.probes.registry import probe_named
    from merlin_doctor.probes.scheduler import run_probe

    nvml = run_probe(probe_named("nvml"), ProbeContext(timeout=10))
    return len(nvml.get("devices") or [])


def _local_cluster(workers: int) -> Tuple[Any, str]:
    """A LocalCUDACluster (one worker per GPU) when dask-cuda and GPUs are here, else a LocalCluster."""
    import importlib.util
    import logging

    quiet = {"silence_logs": logging.CRITICAL, "dashboard_address": None, "threads_per_worker": 1}
    gpus = _local_gpus() if importlib.util.find_spec("dask_cuda") else 0
    if gpus:
        from dask_cuda import LocalCUDACluster

        n = min(workers, gpus)
        return LocalCUDACluster(n_workers=n, **quiet), f"LocalCUDACluster, {n} worker(s), one per GPU"
    from distributed import LocalCluster

    return LocalCluster(n_workers=workers, processes=True, **quiet), f"LocalCluster, {workers} worker processes"


@contextlib.contextmanager
def connect(scheduler: Optional[str], local: Optional[int], timeout: float) -> Iterator[Tuple[Any, str]]:
    """A Client to the scheduler, or to a LocalCluster started here (and closed after)."""
    try:
        from distributed import Client
    except ImportError:
        raise InputError(
            "fleet needs dask.distributed here and on the workers: "
            "python -m pip install 'distributed>=2023.1'  # what merlin-doctor's [fleet] extra adds"
        ) from None
    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, ValueError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        where = f"scheduler {scheduler}"
    else:
        cluster, where = _local_cluster(local or 1)
        client = Client(cluster)
    try:
        yield client, where
    finally:
        client.close(timeout=5)
        if cluster is not None:
            cluster.close(timeout=10)


def _failure(exc: BaseException) -> Tuple[str, str]:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ImportError) and "merlin_doctor" in str(exc):
        return NO_DOCTOR, (
            f"merlin-doctor is not importable there ({text}); install it in the Python that runs "
            f"the worker: python -m pip install 'merlin-doctor=={__version__}'"
        )
    if type(exc).__name__ == "KilledWorker":
        return DIED, "the worker died while probing (KilledWorker)"
    return ERROR, text


def _gather(
    client: Any, calls: Dict[str, Tuple[Callable[..., Any], tuple]], deadline: float
) -> Dict[str, Tuple[str, Any]]:
    """Run one call pinned to each worker; (status, result or reason) per worker by the deadline.

    Wakes up as soon as a call finishes (or every POLL_S to notice a worker that left the
    cluster: its pinned call would wait for it forever) and fetches finished results in one batch.
    """
    from distributed import TimeoutError as WaitTimeout  # asyncio's on Python < 3.11
    from distributed import wait

    futures = {
        address: client.submit(fn, *args, workers=[address], allow_other_workers=False, pure=False, priority=PRIORITY)
        for address, (fn, args) in calls.items()
    }
    out: Dict[str, Tuple[str, Any]] = {}
    while futures:
        try:
            wait(list(futures.values()), timeout=POLL_S, return_when="FIRST_COMPLETED")
        except (WaitTimeout, TimeoutError):
            pass
        done = {a: f for a, f in futures.items() if f.status == "finished"}
        if done:
            for address, result in zip(done, client.gather(list(done.values()))):
                out[address] = (OK, result)
        alive = set(client.scheduler_info()["workers"])
        for address, future in list(futures.items()):
            if future.status == "error":
                out[address] = _failure(future.exception())
            elif address not in alive and address not in done:
                out[address] = (DIED, "the worker left the cluster while probing")
            elif address not in done:
                continue
            del futures[address]
        if futures and time.monotonic() >= deadline:
            for address in futures:
                out[address] = (
                    TIMED_OUT,
                    "no answer before the deadline (--timeout); the probe may still be running there",
                )
            break
    for future in futures.values():
        future.cancel()
    return out


def representatives(nodes: List[Node], every_worker: bool) -> Dict[str, List[Node]]:
    """The worker that probes for each set of identical workers (itself first in its list)."""
    chosen: Dict[str, List[Node]] = {}
    by_key: Dict[str, str] = {}
    for node in sorted(nodes, key=lambda n: n.address):
        key = node.address if every_worker else node.fingerprint or node.address
        rep = by_key.setdefault(key, node.address)
        chosen.setdefault(rep, []).append(node)
    return chosen


def probe_workers(
    client: Any, recipe: str, timeout: float, fast: bool = False, every_worker: bool = False
) -> List[Node]:
    """Fingerprint every worker, then collect facts once per distinct worker, all by one deadline."""
    deadline = time.monotonic() + timeout
    nodes = {address: Node(address) for address in sorted(client.scheduler_info()["workers"])}
    if not nodes:
        raise InputError("the Dask cluster has no workers: start some (`dask worker ADDRESS`) and run again")
    for address, (status, value) in _gather(client, dict.fromkeys(nodes, (worker_fingerprint, ())), deadline).items():
        node = nodes[address]
        if status == OK:
            node.host, node.fingerprint = value["host"], value["key"]
            if value["doctor_version"] != __version__:
                node.detail = f"merlin-doctor {value['doctor_version']} there, {__version__} here"
        else:
            node.status, node.detail = status, value
    groups = representatives([n for n in nodes.values() if n.status == OK], every_worker)
    calls = {rep: (worker_facts, (recipe, max(1.0, timeout / 2), fast)) for rep in groups}
    for rep, (status, value) in _gather(client, calls, deadline).items():
        for node in groups[rep]:
            node.probed_by = rep if node.address != rep else None
            if status == OK:
                node.facts = value
            else:
                shared = f" (probed for it by {rep})" if node.address != rep else ""
                node.status, node.detail = status, value + shared
    return list(nodes.values())
