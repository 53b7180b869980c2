"""`merlin-doctor fleet`: grouping and outliers on facts (pure), then real Dask clusters.

The cluster tests need dask.distributed, which .venv/py39 holds (tests/requirements-tf-cpu.txt);
under .venv/py3 they are skipped with that reason and the pure tests still run. Each worker of
the real cluster is a simulated GPU machine (tests/gpu_sim, selected by the worker's environment
through the Nanny), so the doctor's real probes run on it. Dying, hanging and doctor-less workers
are real worker processes too, set up by a worker preload script.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import time

import pytest
from conftest import doctor, load_fixture

from merlin_doctor.fleet import cluster as fleet_cluster
from merlin_doctor.fleet import judge as fleet_judge
from merlin_doctor.fleet.model import DIED, NO_DOCTOR, OK, TIMED_OUT, Node
from merlin_doctor.fleet.table import document, table_lines

T4 = {
    "index": 0,
    "name": "Tesla T4",
    "compute_capability": "7.5",
    "memory_total_bytes": 16106127360,
    "memory_used_bytes": 0,
}


def fixture_with(driver: str = "525.85.12", cudnn: str = "8.1.0") -> dict:
    """The healthy T4 fixture with this driver and this cuDNN."""
    facts = copy.deepcopy(load_fixture("gpu-t4-healthy.json"))
    facts["probes"]["nvml"] = {"loaded": True, "driver_version": driver, "cuda_driver_version": "12.0", "devices": [T4]}
    facts["probes"]["cuda_libs"] = {
        "libraries": [
            {
                "soname": "libcudnn.so.8",
                "required": True,
                "loaded": True,
                "version": cudnn,
                "path": "/env/lib/libcudnn.so.8",
            }
        ]
    }
    return facts


def node(address: str, facts: dict, status: str = OK) -> Node:
    return Node(address, status=status, host="h", facts=facts if status == OK else None)


# ----------------------------------------------------------------------------- pure


def test_groups_the_majority_and_flags_the_outliers_with_what_differs():
    nodes = [
        node("tcp://a:1", fixture_with()),
        node("tcp://a:2", fixture_with()),
        node("tcp://a:3", fixture_with()),
        node("tcp://b:1", fixture_with(driver="418.87.01")),
        node("tcp://c:1", fixture_with(cudnn="8.0.5")),
        node("tcp://d:1", None, status=DIED),
    ]
    groups = fleet_judge.group(nodes)
    assert [(g.label, g.members, g.majority) for g in groups] == [
        ("A", ["tcp://a:1", "tcp://a:2", "tcp://a:3"], True),
        ("B", ["tcp://b:1"], False),
        ("C", ["tcp://c:1"], False),
    ]
    assert groups[1].differs == [{"path": "nvml.driver_version", "majority": "525.85.12", "value": "418.87.01"}]
    assert groups[2].differs == [
        {"path": "cuda_libs.libraries[libcudnn.so.8].version", "majority": "8.1.0", "value": "8.0.5"}
    ]
    assert [n.address for n in nodes if n.outlier] == ["tcp://b:1", "tcp://c:1"]
    assert nodes[-1].config is None and not nodes[-1].outlier


def test_measurements_do_not_split_a_configuration():
    other = fixture_with()
    other["probes"]["nvml"]["devices"][0]["memory_used_bytes"] = 123456789
    other["probes"]["host"]["disk"]["free_bytes"] = 1
    other["probes"]["nvml"]["duration_s"] = 9.9
    other["probes"]["packages"]["distributions"]["some-tool"] = {"name": "some-tool", "version": "1.0"}
    groups = fleet_judge.group([node("tcp://a:1", fixture_with()), node("tcp://a:2", other)])
    assert len(groups) == 1 and groups[0].majority


def test_a_tie_has_no_majority_and_no_outlier():
    nodes = [node("tcp://a:1", fixture_with()), node("tcp://b:1", fixture_with(driver="418.87.01"))]
    groups = fleet_judge.group(nodes)
    assert len(groups) == 2 and not groups[0].majority and not any(n.outlier for n in nodes)
    doc = document(nodes, groups, "tf210-cuda112", "test", {})
    assert doc["exit_code"] == 1 and doc["summary"]["majority"] is None
    assert "no majority" in "\n".join(table_lines(doc))


def test_identical_workers_are_probed_once_unless_every_worker():
    nodes = [
        Node("tcp://x:2", fingerprint="k1"),
        Node("tcp://x:1", fingerprint="k1"),
        Node("tcp://x:3", fingerprint="k2"),
    ]
    reps = fleet_cluster.representatives(nodes, every_worker=False)
    assert {rep: [n.address for n in members] for rep, members in reps.items()} == {
        "tcp://x:1": ["tcp://x:1", "tcp://x:2"],
        "tcp://x:3": ["tcp://x:3"],
    }
    assert len(fleet_cluster.representatives(nodes, every_worker=True)) == 3


def test_a_worker_without_merlin_doctor_is_named_with_the_fix():
    status, detail = fleet_cluster._failure(ModuleNotFoundError("import of merlin_doctor halted; None in sys.modules"))
    assert status == NO_DOCTOR and "pip install 'merlin-doctor==" in detail
    assert fleet_cluster._failure(ValueError("boom")) == ("error", "ValueError: boom")


def test_table_shows_groups_outliers_verdicts_and_unreachable_workers():
    from merlin_doctor.checks import all_checks
    from merlin_doctor.options import CheckOptions
    from merlin_doctor.recipe import load_recipe

    nodes = [
        node("tcp://a:1", fixture_with()),
        node("tcp://a:2", fixture_with()),
        node("tcp://b:1", fixture_with(driver="418.87.01")),
        Node("tcp://d:1", status=TIMED_OUT, detail="no answer before the deadline"),
    ]
    recipe = load_recipe(None)
    fleet_judge.judge(nodes, [c for c in all_checks() if c.area != "container"], recipe, CheckOptions(fast=True))
    doc = document(nodes, fleet_judge.group(nodes), recipe.name, "test cluster", {"probe_s": 1.0})
    statuses = {w["address"]: {p["id"]: p["status"] for p in w["problems"]} for w in doc["workers"]}
    assert statuses["tcp://b:1"]["gpu.driver"] == "fail" and "gpu.driver" not in statuses["tcp://a:1"]
    text = "\n".join(table_lines(doc))
    assert "A  2 workers  majority" in text and "driver 525.85.12" in text
    assert "OUTLIER" in text and "nvml.driver_version 418.87.01 (A: 525.85.12)" in text
    assert "TIMED-OUT: no answer before the deadline" in text
    assert "[✗] gpu.driver on 1 worker (config B)" in text


# ----------------------------------------------------------------------------- real clusters

PRELOADS = {
    "dies": "import os\nimport merlin_doctor.probes.host as host\n\n"
    "def probe(ctx):\n    os._exit(3)\n\nhost.probe = probe\n",
    "hangs": "import time\nimport merlin_doctor.probes.host as host\n\n"
    "def probe(ctx):\n    time.sleep(600)\n\nhost.probe = probe\n",
    "no-doctor": "import sys\nsys.modules['merlin_doctor'] = None  # as if it were not installed\n",
}


#: Worker name -> the simulated machine it runs on: three alike (A), another driver (B), another cuDNN
#: (C), and three healthy T4s that die mid-probe, hang mid-probe, or cannot import merlin-doctor.
MACHINES = {
    "a1": "healthy-t4",
    "a2": "healthy-t4",
    "a3": "healthy-t4",
    "b": "driver-418",
    "c": "cudnn-8.0.5",
    "dies": "healthy-t4",
    "hangs": "healthy-t4",
    "no-doctor": "healthy-t4",
}


@pytest.fixture
def cluster(tmp_path):
    """Eight real worker processes on simulated GPU machines (MACHINES), three of them broken (PRELOADS)."""
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is not in this venv; the fleet cluster tests run under .venv/py39"
    )
    import logging

    from gpu_sim.build import build_scenario, load_scenarios

    scenarios = load_scenarios()
    machines = {name: build_scenario(name, tmp_path / name, scenarios=scenarios) for name in set(MACHINES.values())}
    workers = {}
    for name, machine in MACHINES.items():
        options = {"nthreads": 1, "env": dict(machines[machine].env)}
        if name in PRELOADS:
            script = tmp_path / f"preload_{name.replace('-', '_')}.py"
            script.write_text(PRELOADS[name])
            options["preload"] = [str(script)]
        workers[name] = {"cls": distributed.Nanny, "options": options}
    spec = distributed.SpecCluster(
        workers=workers,
        silence_logs=logging.CRITICAL,
        scheduler={"cls": distributed.Scheduler, "options": {"dashboard_address": None}},
    )
    with distributed.Client(spec) as client:
        names = {info["name"]: address for address, info in client.scheduler_info()["workers"].items()}
    try:
        yield spec.scheduler_address, names
    finally:
        spec.close(timeout=20)


def test_fleet_on_a_real_cluster_groups_flags_and_survives_dead_and_hung_workers(cluster):
    address, names = cluster
    timeout = 20
    started = time.monotonic()
    result = doctor(
        "fleet",
        "--scheduler",
        address,
        "--json",
        "--fast",
        "--every-worker",
        "--timeout",
        str(timeout),
        timeout=timeout + 60,
    )
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert took < timeout + 20, f"fleet took {took:.0f} s with --timeout {timeout}"

    workers = {w["address"]: w for w in doc["workers"]}
    by_name = {name: workers[addr] for name, addr in names.items()}
    assert {n: w["status"] for n, w in by_name.items()} == {
        "a1": OK,
        "a2": OK,
        "a3": OK,
        "b": OK,
        "c": OK,
        "dies": DIED,
        "hangs": TIMED_OUT,
        "no-doctor": NO_DOCTOR,
    }
    assert "merlin-doctor is not importable" in by_name["no-doctor"]["detail"]

    configs = {tuple(sorted(c["workers"])): c for c in doc["configurations"]}
    assert len(configs) == 3
    majority = configs[tuple(sorted(names[n] for n in ("a1", "a2", "a3")))]
    assert majority["label"] == "A" and majority["majority"]
    other_driver, other_cudnn = configs[(names["b"],)], configs[(names["c"],)]
    driver_differs = {d["path"]: (d["majority"], d["value"]) for d in other_driver["differs"]}
    assert driver_differs["nvml.driver_version"] == ("525.85.12", "418.87.01")
    assert not any("cudnn" in path for path in driver_differs)
    cudnn_differs = {d["path"]: (d["majority"], d["value"]) for d in other_cudnn["differs"]}
    assert cudnn_differs["cuda_libs.libraries[libcudnn.so.8].version"] == ("8.6.0", "8.0.5")
    assert not any("driver" in path for path in cudnn_differs)
    assert not other_driver["majority"] and not other_cudnn["majority"]
    assert sorted(doc["summary"]["outliers"]) == sorted([names["b"], names["c"]])
    assert {p["id"]: p["status"] for p in by_name["b"]["problems"]}["gpu.driver"] == "fail"
    assert {p["id"]: p["status"] for p in by_name["c"]["problems"]}["cuda.libcudnn"] == "fail"
    assert not {"gpu.driver", "cuda.libcudnn"} & {p["id"] for p in by_name["a1"]["problems"]}

    text = "\n".join(table_lines(doc))
    for expected in (
        "A  3 workers  majority",
        "B  1 worker   OUTLIER",
        "C  1 worker   OUTLIER",
        "DIED:",
        "TIMED-OUT:",
        "NO-DOCTOR:",
        f"[✗] gpu.driver on 1 worker (config {other_driver['label']})",
        f"{names['no-doctor']} no-doctor: merlin-doctor is not importable",
    ):
        assert expected in text, text


def test_fleet_local_prints_one_grouped_table():
    pytest.importorskip(
        "distributed", reason="dask.distributed is not in this venv; the fleet cluster tests run under .venv/py39"
    )
    result = doctor("fleet", "--local", "2", "--fast", "--cpu-ok", "--timeout", "60", timeout=180)
    assert result.returncode in (0, 1), result.stderr
    out = result.stdout
    assert "2 workers (LocalCluster, 2 worker processes)" in out
    assert "A  2 workers  majority" in out and "OUTLIER" not in out
    assert "1 distinct environment(s) probed" in out and "(same environment as tcp://" in out
    assert "starting 2 local Dask worker(s)" in result.stderr and "Traceback" not in result.stderr


def test_fleet_needs_exactly_one_target():
    result = doctor("fleet")
    assert result.returncode == 2 and "give one of --scheduler ADDRESS or --local N" in result.stderr


def test_an_unreachable_scheduler_is_one_line_and_exit_2():
    pytest.importorskip("distributed", reason="dask.distributed is not in this venv")
    result = doctor("fleet", "--scheduler", "tcp://127.0.0.1:9", "--timeout", "2", timeout=60)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("merlin-doctor: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9: ")
    assert "Traceback" not in result.stderr


def test_a_cluster_without_workers_is_one_line_and_exit_2():
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not in this venv")
    with distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp", dashboard_address=None) as empty:
        result = doctor("fleet", "--scheduler", empty.scheduler_address, "--timeout", "10", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "merlin-doctor: error: the Dask cluster has no workers: start some (`dask worker ADDRESS`) and run again"
    )


@pytest.mark.per_interpreter
def test_without_distributed_the_fleet_says_how_to_install_it():
    if importlib.util.find_spec("distributed") is not None:
        pytest.skip("dask.distributed is installed in this venv; this is the test for venvs without it (.venv/py3)")
    result = doctor("fleet", "--local", "2")
    assert result.returncode == 2
    assert (
        "fleet needs dask.distributed here and on the workers: python -m pip install 'distributed>=2023.1'"
        in result.stderr
    )
    assert "install merlin-doctor" not in result.stderr  # it is on no package index
