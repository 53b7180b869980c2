"""Verdicts judged by the right row of the right table (issue 14, items 2-7), on facts.

Each test states a machine as the probes report it and the cause and fix the doctor must
give; the gpu_sim scenarios (test_gpu_scenarios.py) cover the same judgements end to end.
"""

from __future__ import annotations

import copy

import pytest
from conftest import load_fixture
from hypothesis import given
from hypothesis import strategies as st

from merlin_doctor import knowledge
from merlin_doctor.checks import all_checks
from merlin_doctor.checks.activation import ptxas_archs
from merlin_doctor.explain import explain_lines
from merlin_doctor.facts import Facts
from merlin_doctor.options import CheckOptions
from merlin_doctor.probes.cuda_libs import library_specs
from merlin_doctor.recipe import available_recipes, load_recipe
from merlin_doctor.runner import run_checks, select_checks
from merlin_doctor.verdict import Status


def judge(probes: dict, only, recipe: str = "tf210-cuda112", **options) -> dict:
    checks = select_checks(all_checks(), only=list(only))
    return {v.id: v for v in run_checks(checks, Facts(probes), load_recipe(recipe), CheckOptions(**options))}


@pytest.fixture
def t4():
    return copy.deepcopy(load_fixture("gpu-t4-healthy.json")["probes"])


# ------------------------------------------------------------------ item 5: the TF build table

ROW_KEYS = {"cuda", "cudnn", "tensorrt", "tensorrt_soname", "compute_capabilities", "toolkit_root", "confidence"}


def test_the_build_table_covers_2_4_to_2_17_with_every_field():
    rows = knowledge.load("tf_builds")["tensorflow"]
    assert {f"2.{minor}" for minor in range(4, 18)} <= set(rows)
    for series, row in rows.items():
        assert set(row) >= ROW_KEYS, series
        assert row["toolkit_root"] == f"/usr/local/cuda-{row['cuda']}", series


@pytest.mark.parametrize("name", available_recipes())
def test_each_recipe_is_judged_by_its_own_tensorflow_row(name):
    recipe = load_recipe(name)
    row = knowledge.tensorflow_build(recipe.expect.tensorflow)
    assert row["exact"] and row["series"] == knowledge.tensorflow_series(recipe.expect.tensorflow)
    soname = recipe.expect.tensorrt_soname or row["tensorrt_soname"]
    assert f"libnvinfer.so.{soname}" in [
        s["soname"] for s in library_specs(recipe.expect.tensorrt_soname, recipe.expect.tensorflow)
    ]


def test_tensorflow_2_12_is_not_judged_by_2_10s_row(t4):
    """merlin-tensorflow-23.06 pins TensorFlow 2.12 (CUDA 11.8, cuDNN 8.6, TensorRT 8)."""
    row = knowledge.tensorflow_build("==2.12.*")
    assert (row["cuda"], row["cudnn"], row["tensorrt_soname"], row["toolkit_root"]) == (
        "11.8",
        "8.6",
        "8",
        "/usr/local/cuda-11.8",
    )
    t4["tf_build"] = {"found": False, "error": "no build_info.py"}
    v = judge(t4, ["gpu.compute-capability"], recipe="merlin-tensorflow-23.06")["gpu.compute-capability"]
    assert v.evidence["tensorflow_series"] == "2.12"


def test_summaries_name_the_recipes_tensorflow(t4):
    for lib in t4["cuda_libs"]["libraries"]:
        if lib["soname"] == "libcudart.so.11.0":
            lib.update(
                loaded=False,
                error="libcudart.so.11.0: cannot open shared object file",
                copies=[],
                other_sonames=[{"soname": "libcudart.so.13", "path": "/env/lib/libcudart.so.13"}],
            )
    v = judge(t4, ["cuda.libcudart"], recipe="merlin-tensorflow-23.06")["cuda.libcudart"]
    assert (
        "found only /env/lib/libcudart.so.13 (no package): another major, which TensorFlow 2.12 does not load"
        in v.summary
    )
    assert "TensorFlow 2.10" not in v.summary


@given(st.integers(1, 3), st.integers(0, 40), st.integers(0, 9))
def test_any_tensorflow_version_gets_a_row_of_its_series_or_its_nearest(major, minor, patch):
    row = knowledge.tensorflow_build(f"{major}.{minor}.{patch}")
    rows = knowledge.load("tf_builds")["tensorflow"]
    assert row["series"] in rows
    assert row["exact"] == (f"{major}.{minor}" in rows)
    assert knowledge.min_compute_capability(row["compute_capabilities"]) == row["min_compute_capability"]


# ------------------------------------------------------------------ item 6: wording


def test_cupti_of_another_cuda_minor_is_named_not_called_missing(t4):
    for lib in t4["cuda_libs"]["libraries"]:
        if lib["soname"] == "libcupti.so.11.2":
            lib.update(
                loaded=False,
                error="libcupti.so.11.2: cannot open shared object file",
                copies=[],
                other_sonames=[
                    {"soname": "libcupti.so.11.8", "path": "/env/lib/libcupti.so.11.8", "on_search_path": True}
                ],
            )
    v = judge(t4, ["cuda.libcupti"])["cuda.libcupti"]
    assert v.status is Status.PASS
    assert "is not installed" not in v.summary
    assert (
        "libcupti.so.11.2 (CUPTI (profiler only)) is not found, but /env/lib/libcupti.so.11.8 (no package) is:"
        in v.summary
    )


# ------------------------------------------------------------------ item 2: ptxas


def test_ptxas_targets_follow_the_cuda_releases():
    assert {"3.5", "7.0", "8.0", "8.6"} <= ptxas_archs("11.2") and "8.9" not in ptxas_archs("11.2")
    assert {"8.9", "9.0"} <= ptxas_archs("11.8")
    assert "3.5" not in ptxas_archs("12.0") and "5.0" in ptxas_archs("12.0")
    assert "7.0" not in ptxas_archs("13.0") and "7.5" in ptxas_archs("13.0")
    assert ptxas_archs("10.2") is None


def _ptxas(t4: dict, release: str, driver_cuda: str) -> dict:
    t4["activation"]["ptxas"] = {"path": "/env/bin/ptxas", "version": f"{release}.0", "release": release}
    t4["nvml"]["cuda_driver_version"] = driver_cuda
    return t4


def test_ptxas_of_a_newer_cuda_major_than_the_driver_fails(t4):
    v = judge(_ptxas(t4, "13.0", "12.4"), ["activation.ptxas"])["activation.ptxas"]
    assert v.status is Status.FAIL and "a newer major than the driver's CUDA 12.4" in v.summary
    assert v.fix == "conda install -c nvidia cuda-nvcc=11.3.58", "the recipe's own ptxas fits this T4 and driver"


def test_ptxas_newer_than_the_driver_within_its_major_warns(t4):
    v = judge(_ptxas(t4, "12.2", "12.0"), ["activation.ptxas"])["activation.ptxas"]
    assert v.status is Status.WARN and "newer than the driver's CUDA 12.0" in v.summary


def test_ptxas_that_knows_the_gpu_and_the_driver_passes(t4):
    v = judge(_ptxas(t4, "11.8", "12.0"), ["activation.ptxas"])["activation.ptxas"]
    assert v.status is Status.PASS and "compiles for sm_75" in v.summary


# ------------------------------------------------------------------ item 7: host.cpu


def _host(t4: dict, machine: str, flags) -> dict:
    t4["host"].update(machine=machine, cpu_flags=flags, cpu_model="Intel(R) Pentium(R) Silver N5000 CPU @ 1.10GHz")
    return t4


def test_a_cpu_without_avx_fails_before_tensorflow_dies_of_it(t4):
    v = judge(_host(t4, "x86_64", ["fpu", "sse2", "sse4_2"]), ["host.cpu"])["host.cpu"]
    assert v.status is Status.FAIL and "lacks AVX" in v.summary and "Illegal instruction" in v.summary
    assert "AVX" in v.fix


def test_a_cpu_with_avx_passes_and_other_machines_need_nothing(t4):
    assert judge(_host(t4, "x86_64", ["avx", "sse2"]), ["host.cpu"])["host.cpu"].status is Status.PASS
    assert judge(_host(t4, "aarch64", ["fp", "asimd"]), ["host.cpu"])["host.cpu"].status is Status.PASS
    assert judge(_host(t4, "x86_64", None), ["host.cpu"])["host.cpu"].status is Status.SKIP


def test_explain_points_illegal_instruction_at_host_cpu():
    match = explain_lines(["Illegal instruction (core dumped)"]).failures[0]
    assert (match.id, match.check) == ("cpu-instructions-missing", "host.cpu")
