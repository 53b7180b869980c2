"""`merlin-doctor fleet`: the probes on every worker of a Dask cluster, judged here.

Three parts. `worker_fingerprint` and `worker_facts` run inside the Dask workers. `connect`
and `probe_workers` talk to the cluster: each call is pinned to one worker and the whole run
has one deadline, so a worker that dies or hangs mid-probe becomes a row of the table, never
a stuck doctor. `judge` and `group` are pure: verdicts per node, configurations grouped by
the facts that matter (factpaths.config_signature), the nodes that differ from the majority.

Workers that share a host, an interpreter and every environment variable (the workers of
one LocalCluster) would collect identical facts, so one of them probes for all (unless
`every_worker`); a LocalCUDACluster's workers differ in CUDA_VISIBLE_DEVICES, so each probes.
dask is imported only inside functions.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from merlin_doctor import __version__
from merlin_doctor.errors import InputError
from merlin_doctor.factpaths import config_signature

POLL_S = 0.25
#: Our tasks go ahead of queued work on a busy cluster (not ahead of running work).
PRIORITY = 1000

OK, DIED, TIMED_OUT, NO_DOCTOR, ERROR = "ok", "died", "timed-out", "no-doctor", "error"


@dataclass
class Node:
    """One worker: where it is, whether it answered, its facts and verdicts."""

    address: str
    status: str = OK
    detail: str = ""
    host: Optional[str] = None
    fingerprint: Optional[str] = None
    probed_by: Optional[str] = None  # the worker whose identical facts this one shares
    facts: Optional[Dict[str, Any]] = None
    verdicts: List[Any] = field(default_factory=list)  # Verdict objects, once judged
    config: Optional[str] = None  # the label of its configuration group
    outlier: bool = False


@dataclass
class Group:
    label: str
    signature: Dict[str, Any]
    members: List[str]
    majority: bool = False
    differs: List[Dict[str, Any]] = field(default_factory=list)  # {path, majority, value}


# ----------------------------------------------------------------------------- on the workers

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
    return {"host": host, "pid": os.getpid(), "python": sys.executable, "doctor_version": __version__,
            "key": hashlib.sha256(identity.encode()).hexdigest()[:16]}


def worker_facts(recipe: Optional[str], probe_timeout: float, fast: bool) -> Dict[str, Any]:
    """Every probe's facts on this worker, as `merlin-doctor facts` would collect them here."""
    from merlin_doctor.facts import Facts
    from merlin_doctor.probes import ProbeContext

    facts = Facts.live(ProbeContext(recipe_path=recipe, timeout=probe_timeout))
    facts.collect_all(fast=fast)
    return facts.to_dict()


# ----------------------------------------------------------------------------- the cluster

def recipe_reference(recipe_path: str, recipe_name: str) -> str:
    """A built-in recipe by name (its path differs per install), any other by absolute path."""
    from merlin_doctor.recipe import RECIPES_DIR

    path = Path(recipe_path).resolve()
    return recipe_name if path.parent == Path(RECIPES_DIR).resolve() else str(path)


def _local_gpus() -> int:
    from merlin_doctor.probes import ProbeContext, probe_named, run_probe

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
        raise InputError("fleet needs dask.distributed here and on the workers: "
                         "python -m pip install 'merlin-doctor[fleet]'") from None
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
        return NO_DOCTOR, (f"merlin-doctor is not importable there ({text}); install it in the Python that runs "
                           f"the worker: python -m pip install 'merlin-doctor=={__version__}'")
    if type(exc).__name__ == "KilledWorker":
        return DIED, "the worker died while probing (KilledWorker)"
    return ERROR, text


def _gather(client: Any, calls: Dict[str, Tuple[Callable[..., Any], tuple]],
            deadline: float) -> Dict[str, Tuple[str, Any]]:
    """Run one call pinned to each worker; (status, result or reason) per worker by the deadline.

    Wakes up as soon as a call finishes (or every POLL_S to notice a worker that left the
    cluster: its pinned call would wait for it forever) and fetches finished results in one batch.
    """
    from distributed import TimeoutError as WaitTimeout, wait  # asyncio's on Python < 3.11

    futures = {address: client.submit(fn, *args, workers=[address], allow_other_workers=False, pure=False,
                                      priority=PRIORITY)
               for address, (fn, args) in calls.items()}
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
                out[address] = (TIMED_OUT, "no answer before the deadline (--timeout); the probe may still be "
                                           "running there")
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


def probe_workers(client: Any, recipe: str, timeout: float, fast: bool = False,
                  every_worker: bool = False) -> List[Node]:
    """Fingerprint every worker, then collect facts once per distinct worker, all by one deadline."""
    deadline = time.monotonic() + timeout
    nodes = {address: Node(address) for address in sorted(client.scheduler_info()["workers"])}
    if not nodes:
        raise InputError("the Dask cluster has no workers: start some (`dask worker ADDRESS`) and run again")
    for address, (status, value) in _gather(client, {a: (worker_fingerprint, ()) for a in nodes}, deadline).items():
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


# ----------------------------------------------------------------------------- pure: judge, group

def judge(nodes: List[Node], checks: List[Any], recipe: Any, options: Any) -> None:
    """Each answering node's verdicts; nodes that share facts share one judgement."""
    from merlin_doctor.facts import Facts
    from merlin_doctor.runner import run_checks

    judged: Dict[str, List[Any]] = {}
    for node in nodes:
        if node.status != OK or node.facts is None:
            continue
        key = node.probed_by or node.address
        if key not in judged:
            snapshot = Facts(node.facts.get("probes", {}), node.facts.get("meta"))
            judged[key] = run_checks(checks, snapshot, recipe, options)
        node.verdicts = judged[key]


def _label(index: int) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return letters[index] if index < len(letters) else f"G{index + 1}"


def group(nodes: List[Node]) -> List[Group]:
    """Configurations: nodes with equal signatures, largest first; the rest differ from the majority.

    A majority exists when one group is strictly the largest; its nodes are the norm, every
    other node is an outlier. With a tie there is no norm: differences are shown against A.
    """
    buckets: Dict[str, Group] = {}
    signatures: Dict[int, Tuple[Dict[str, Any], str]] = {}  # workers probed once share one facts dict
    for node in sorted(nodes, key=lambda n: n.address):
        if node.status != OK or node.facts is None:
            continue
        if id(node.facts) not in signatures:
            signature = config_signature(node.facts.get("probes", {}))
            signatures[id(node.facts)] = (signature, json.dumps(signature, sort_keys=True, default=str))
        signature, key = signatures[id(node.facts)]
        buckets.setdefault(key, Group("", signature, [])).members.append(node.address)
    groups = sorted(buckets.values(), key=lambda g: (-len(g.members), g.members[0]))
    for index, g in enumerate(groups):
        g.label = _label(index)
    if not groups:
        return groups
    norm = groups[0]
    norm.majority = len(groups) == 1 or len(norm.members) > len(groups[1].members)
    for g in groups[1:]:
        paths = list(norm.signature) + [p for p in g.signature if p not in norm.signature]
        g.differs = [{"path": p, "majority": norm.signature.get(p), "value": g.signature.get(p)}
                     for p in paths if norm.signature.get(p) != g.signature.get(p)]
    by_address = {n.address: n for n in nodes}
    for g in groups:
        for address in g.members:
            by_address[address].config = g.label
            by_address[address].outlier = norm.majority and not g.majority
    return groups


def run_fleet(scheduler: Optional[str], local: Optional[int], recipe: Optional[str], timeout: float,
              fast: bool = False, cpu_ok: bool = False, every_worker: bool = False,
              progress: Callable[[str], None] = lambda message: None) -> Dict[str, Any]:
    """Connect (or start a local cluster), probe the workers, judge centrally: the fleet document."""
    from merlin_doctor.checks import all_checks
    from merlin_doctor.fleet_table import document
    from merlin_doctor.recipe import load_recipe
    from merlin_doctor.runner import RunOptions, select_checks

    loaded = load_recipe(recipe)
    checks = select_checks(all_checks(), skip=["container"])  # container checks judge a host, not a worker
    started = time.perf_counter()
    progress(f"starting {local} local Dask worker(s) ..." if local else f"connecting to {scheduler} ...")
    with connect(scheduler, local, timeout) as (client, where):
        connected = time.perf_counter()
        progress(f"probing the workers ({where}) ...")
        nodes = probe_workers(client, recipe_reference(loaded.path, loaded.name), timeout,
                              fast=fast, every_worker=every_worker)
        probed = time.perf_counter()
    closed = time.perf_counter()
    judge(nodes, checks, loaded, RunOptions(fast=fast, cpu_ok=cpu_ok))
    timings = {"cluster_start_s": connected - started, "probe_s": probed - connected,
               "cluster_close_s": closed - probed, "judge_s": time.perf_counter() - closed,
               "total_s": time.perf_counter() - started}
    return document(nodes, group(nodes), loaded.name, where, timings)
