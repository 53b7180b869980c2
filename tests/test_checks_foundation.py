"""Foundation checks judged on facts fixtures: no probing, only data in and verdicts out."""

from __future__ import annotations

import pytest
from conftest import load_fixture

from merlin_doctor import testing
from merlin_doctor.checks import all_checks
from merlin_doctor.facts import Facts
from merlin_doctor.options import CheckOptions
from merlin_doctor.recipe import load_recipe
from merlin_doctor.runner import exit_code, run_checks, select_checks
from merlin_doctor.verdict import Status

FOUNDATION_AREAS = ("host", "python", "packages", "gpu", "activation")


def judge(snapshot: dict, recipe: str = "tf210-cuda112", **options) -> dict:
    verdicts = testing.judge(snapshot, recipe, only=FOUNDATION_AREAS, **options)
    return {i: v for i, v in verdicts.items() if not i.startswith("gpu.") or i == "gpu.nvml"}


@pytest.fixture
def healthy():
    return load_fixture("gpu-t4-healthy.json")


def test_healthy_gpu_workstation_passes_everything(healthy):
    verdicts = judge(healthy)
    assert {v.status for v in verdicts.values()} == {Status.PASS}, {
        k: v.summary for k, v in verdicts.items() if v.status != Status.PASS
    }
    assert exit_code(list(verdicts.values())) == 0


def test_cpu_venv_fixture_with_cpu_recipe(healthy):
    verdicts = judge(load_fixture("cpu-venv-py39.json"), recipe="cpu")
    assert verdicts["gpu.nvml"].status is Status.SKIP
    assert "expects no GPU" in verdicts["gpu.nvml"].summary
    assert all(v.status in (Status.PASS, Status.SKIP) for v in verdicts.values())


def test_gpu_less_machine_fails_with_the_driver_fix_or_skips_with_cpu_ok():
    snapshot = load_fixture("cpu-venv-py39.json")
    v = judge(snapshot)["gpu.nvml"]
    assert v.status is Status.FAIL
    assert "NVML Shared Library Not Found" in v.summary
    assert ">= 460.27.03" in v.fix, "the minimum driver for CUDA 11.2 comes from the knowledge table"
    assert judge(snapshot, cpu_ok=True)["gpu.nvml"].status is Status.SKIP


def test_nvml_timeout_is_a_failure_with_evidence(healthy):
    healthy["probes"]["nvml"] = {"error": "timed out after 30 s (the child was killed)", "timed_out": True}
    v = judge(healthy)["gpu.nvml"]
    assert v.status is Status.FAIL and v.evidence["timed_out"] is True


def test_protobuf_320_conflicts_with_tensorflow_210(healthy):
    dists = healthy["probes"]["packages"]["distributions"]
    dists["protobuf"]["version"] = "3.20.0"
    verdicts = judge(healthy)
    conflicts = verdicts["packages.conflicts"]
    assert conflicts.status is Status.FAIL
    assert any(
        u["requires"].startswith("protobuf") and u["found"] == "3.20.0" and u["package"].startswith("tensorflow ")
        for u in conflicts.evidence["unmet"]
    )
    required = verdicts["packages.required"]
    assert required.status is Status.FAIL and "protobuf==3.19.6 (found 3.20.0)" in required.summary
    assert "protobuf==3.19.6" in required.fix


def test_missing_optional_group_warns_with_nvidia_index(healthy):
    for name in ("cudf-cu11", "dask-cudf-cu11", "cuml-cu11", "cugraph-cu11"):
        del healthy["probes"]["packages"]["distributions"][name]
    v = judge(healthy)["packages.required"]
    assert v.status is Status.WARN
    assert "--extra-index-url https://pypi.nvidia.com" in v.fix
    assert "NVTabular runs on the CPU" in v.summary


def test_a_missing_cuda_wheel_fails_on_a_gpu_and_is_only_noted_under_cpu_ok(healthy):
    """The cuDNN wheel is required on a GPU; a machine judged for the CPU never fails for it."""
    del healthy["probes"]["packages"]["distributions"]["nvidia-cudnn-cu11"]
    gpu = judge(healthy)["packages.required"]
    assert gpu.status is Status.FAIL and "nvidia-cudnn-cu11==8.6.0.163 (found nothing)" in gpu.summary
    assert gpu.fix == "python -m pip install nvidia-cudnn-cu11==8.6.0.163"
    cpu = judge(healthy, cpu_ok=True)["packages.required"]
    assert cpu.status is Status.WARN and "only TensorFlow on a GPU loads cuDNN" in cpu.summary


def test_two_cupy_builds_fail(healthy):
    dists = healthy["probes"]["packages"]["distributions"]
    for name in ("cupy", "cupy-cuda11x"):
        dists[name] = {"name": name, "version": "12.0.0", "requires": [], "top_level": ["cupy"], "location": "/x"}
    healthy["probes"]["packages"]["shared_modules"]["cupy"] = {
        "distributions": ["cupy", "cupy-cuda11x"],
        "kinds": ["package"],
    }
    v = judge(healthy)["packages.duplicates"]
    assert v.status is Status.FAIL
    # The kept build is reinstalled exactly as installed: no dependency re-resolved (numpy 2 under TF 2.10).
    assert v.fix == (
        "python -m pip uninstall -y cupy && python -m pip install --force-reinstall --no-deps cupy-cuda11x==12.0.0"
    )


def test_a_clash_with_no_rule_names_no_distribution_to_uninstall(healthy):
    """Which of two unknown distributions the stack needs is the user's call: no uninstall is guessed."""
    dists = healthy["probes"]["packages"]["distributions"]
    for name in ("foo-a", "foo-b"):
        dists[name] = {"name": name, "version": "1.0", "requires": [], "top_level": ["foo"], "location": "/x"}
    healthy["probes"]["packages"]["shared_modules"]["foo"] = {"distributions": ["foo-a", "foo-b"], "kinds": ["package"]}
    v = judge(healthy)["packages.duplicates"]
    assert "uninstall -y foo" not in (v.fix or "") and v.fix.startswith("python -m pip show foo-a foo-b")


def test_a_container_recipe_never_pip_replaces_the_images_packages():
    from merlin_doctor.recipe import load_recipe

    image = load_recipe("merlin-tensorflow-23.02")
    assert image.install_command(["tensorflow"], force=True).startswith("docker pull nvcr.io/nvidia/merlin/")
    conda = load_recipe("tf210-cuda112")
    assert conda.install_command(["tensorflow"], force=True) == (
        "python -m pip install --force-reinstall --no-deps tensorflow==2.10.0"
    )


def test_namespace_packages_are_not_duplicates(healthy):
    assert healthy["probes"]["packages"]["shared_modules"]["merlin"]["kinds"] == ["namespace"]
    assert judge(healthy)["packages.duplicates"].status is Status.PASS


def test_wrong_python_and_wrong_env(healthy):
    healthy["probes"]["interpreter"]["version"] = "3.11.7"
    healthy["probes"]["interpreter"]["env"]["CONDA_PREFIX"] = "/home/ana/miniconda3"
    healthy["probes"]["interpreter"]["env"]["CONDA_DEFAULT_ENV"] = "base"
    verdicts = judge(healthy)
    assert verdicts["python.version"].status is Status.FAIL
    assert verdicts["python.env"].status is Status.FAIL
    assert "not from the active conda env base" in verdicts["python.env"].summary


def test_other_env_active_warns(healthy):
    for probe in ("interpreter",):
        healthy["probes"][probe]["env"].update(CONDA_PREFIX="/x/envs/rapids", CONDA_DEFAULT_ENV="rapids")
        healthy["probes"][probe]["prefix"] = "/x/envs/rapids"
    v = judge(healthy)["python.env"]
    assert v.status is Status.WARN and v.fix == "conda activate merlin"


def test_stale_activation_script_and_unapplied_variables(healthy):
    act = healthy["probes"]["activation"]
    act["scripts"]["activate.d"]["merlin-doctor.sh"] += "export EXTRA=1\n"
    verdicts = judge(healthy)
    assert verdicts["activation.scripts"].status is Status.FAIL
    assert verdicts["activation.scripts"].fix == "merlin-doctor fix --only activation"
    assert verdicts["activation.applied"].status is Status.SKIP


def test_env_activated_before_scripts_were_written(healthy):
    act = healthy["probes"]["activation"]
    act["variables"].pop("XLA_FLAGS")
    act["variables"]["LD_LIBRARY_PATH"] = act["prefix"] + "/lib"
    v = judge(healthy)["activation.applied"]
    assert v.status is Status.FAIL
    assert set(v.evidence["variables"]) == {"XLA_FLAGS", "LD_LIBRARY_PATH"}
    assert v.fix == "conda deactivate && conda activate merlin"


def test_articles_leaky_env_vars_script_warns(healthy):
    healthy["probes"]["activation"]["scripts"]["activate.d"]["env_vars.sh"] = (
        "export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$CONDA_PREFIX/lib/\n"
    )
    v = judge(healthy)["activation.scripts"]
    assert v.status is Status.WARN and "env_vars.sh" in v.summary


def test_missing_libdevice_ptxas_and_stale_ld_entry(healthy):
    act = healthy["probes"]["activation"]
    act["libdevice"]["exists"] = False
    act["ptxas"] = {"path": None, "searched": ["/usr/local/cuda/bin/ptxas", "$PATH"]}
    act["ld_library_path"].append({"path": "/usr/local/cuda-10.2/lib64", "exists": False})
    verdicts = judge(healthy)
    assert verdicts["activation.libdevice"].status is Status.FAIL
    assert verdicts["activation.libdevice"].step == "copies"
    assert verdicts["activation.ptxas"].fix == "conda install -c nvidia cuda-nvcc=11.3.58"
    assert verdicts["activation.ld-path"].status is Status.WARN


def test_old_glibc_and_low_disk(healthy):
    healthy["probes"]["host"]["glibc"] = "2.12"
    healthy["probes"]["host"]["disk"]["free_bytes"] = 1024**3
    verdicts = judge(healthy)
    assert verdicts["host.glibc"].status is Status.FAIL
    assert verdicts["host.disk"].status is Status.FAIL
    assert "--prefix" in verdicts["host.disk"].fix


def test_snapshot_missing_a_probe_is_judged_not_crashed(healthy):
    del healthy["probes"]["nvml"]
    v = judge(healthy)["gpu.nvml"]
    assert v.status is Status.SKIP and "holds no 'nvml' facts" in v.summary


def test_every_check_is_documented_and_listed():
    for c in all_checks():
        assert c.function.__doc__, f"{c.id} needs a docstring: it is its description"
        assert c.area in FOUNDATION_AREAS or c.area not in ("", None)


def test_mig_instances_in_cuda_visible_devices_are_visible_devices(healthy):
    healthy["probes"]["kernel"]["cuda_visible_devices"] = "MIG-4f1a6c1e-0000-5555-8888-000000000001"
    checks = select_checks(all_checks(), only=["gpu.visible-devices"])
    v = run_checks(checks, Facts(healthy["probes"]), load_recipe("tf210-cuda112"), CheckOptions())
    assert {x.id: x.status for x in v}["gpu.visible-devices"] is Status.PASS


def test_a_partial_list_of_missing_packages_says_how_many_more(healthy):
    dists = healthy["probes"]["packages"]["distributions"]
    for name in (
        "tensorflow",
        "nvtabular",
        "merlin-models",
        "merlin-core",
        "merlin-dataloader",
        "dask-cuda",
        "dask",
        "distributed",
    ):
        del dists[name]
    v = judge(healthy)["packages.required"]
    assert v.status is Status.FAIL and v.summary.startswith("8 required packages are missing")
    assert v.summary.endswith(" and 2 more") and len(v.evidence["problems"]) == 8
