"""The pip-wheel layout (recipe kind venv, tf210-pip) on facts and small real venvs: no wheels needed.

The real NVIDIA wheels are exercised by tests/test_realbin.py; these pin the rules that
decide what the doctor says about them: fixes in the judged env's own kind, no circular
fix, namespace packages shared by design, a venv activated by its bin/activate.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import REPO, doctor, load_fixture
from hypothesis import given
from hypothesis import strategies as st

from merlin_doctor.activation import activate_command, activate_script, add_hooks, deactivate_script, hooked
from merlin_doctor.errors import InputError
from merlin_doctor.probes.packages import _overlap
from merlin_doctor.recipe import fix_command, load_recipe, parse_recipe
from merlin_doctor.setup.engines.venv import venv_version
from merlin_doctor.testing import judge as judge_facts
from merlin_doctor.verdict import Status

VENV = "/home/ana/venvs/merlin-pip"
SITE = f"{VENV}/lib/python3.9/site-packages"


def judge(snapshot: dict, recipe: str, *ids: str) -> dict:
    return judge_facts(snapshot, recipe, only=ids)


@pytest.fixture
def healthy() -> dict:
    return load_fixture("gpu-t4-healthy.json")


def _cudnn(snapshot: dict) -> dict:
    return next(e for e in snapshot["probes"]["cuda_libs"]["libraries"] if e["soname"] == "libcudnn.so.8")


def _cudnn_9_from_pip(snapshot: dict, kind: str, prefix: str = VENV) -> dict:
    """libcudnn.so.8 gone, the cu11 wheel's 9.0 in its place (what `pip install nvidia-cudnn-cu11` gives today)."""
    snap = copy.deepcopy(snapshot)
    snap["probes"]["cuda_libs"]["env"] = {
        "prefix": prefix,
        "kind": kind,
        "activated": True,
        "has_conda": kind == "conda",
    }
    entry = _cudnn(snap)
    nine = f"{prefix}/lib/python3.9/site-packages/nvidia/cudnn/lib/libcudnn.so.9"
    entry.update(
        loaded=False,
        error="libcudnn.so.8: cannot open shared object file",
        path=None,
        realpath=None,
        version=None,
        owner=None,
        copies=[],
        other_sonames=[
            {
                "path": nine,
                "realpath": nine,
                "soname": "libcudnn.so.9",
                "on_search_path": True,
                "version": "9.0.0.312",
                "owner": {"kind": "pip", "name": "nvidia-cudnn-cu11", "version": "9.0.0.312"},
            }
        ],
    )
    return snap


# --- the recipe -------------------------------------------------------------------------------


def test_tf210_pip_is_a_venv_recipe_with_cudnn_8_pinned_and_no_copies() -> None:
    recipe = load_recipe("tf210-pip")
    assert recipe.is_venv and recipe.python_version == "3.9" and not recipe.conda_dependencies and not recipe.copies
    pins = {r.name: str(r.specifier) for r, _ in recipe.requirements()}
    assert pins["nvidia-cudnn-cu11"] == "==8.6.0.163" and pins["tensorrt"] == "==8.5.3.1"
    assert recipe.expand(recipe.activate[1].set, VENV) == f'--xla_gpu_cuda_data_dir="{SITE}/nvidia/cuda_nvcc"'


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: x\nkind: venv\n", "python: a kind: venv recipe names the Python"),
        (
            "name: x\nkind: venv\npython: '3.9'\nconda: {dependencies: [python=3.9]}\n",
            "conda: not allowed in a kind: venv",
        ),
        ("name: x\npython: '3.9'\n", "python: not allowed in a kind: conda"),
        ("name: x\nkind: venv\npython: '3.x'\n", "python: expected a Python version"),
    ],
)
def test_venv_recipe_keys_are_checked_with_their_line(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_recipe(text, "r.yml")


def test_fix_commands_name_a_recipe_that_is_not_the_default() -> None:
    assert fix_command(load_recipe("tf210-pip"), "links") == "merlin-doctor fix --only links --recipe tf210-pip"
    assert fix_command(load_recipe(), "links", force=True) == "merlin-doctor fix --only links --force"


# --- activation of a venv -----------------------------------------------------------------------


def test_venv_scripts_speak_of_virtual_env_and_the_undo_restores_only_what_was_saved() -> None:
    recipe = load_recipe("tf210-pip")
    assert '"${VIRTUAL_ENV}"' in activate_script(recipe) and "CONDA_PREFIX" not in activate_script(recipe)
    assert 'elif [ -n "${_MERLIN_DOCTOR_OLD_LD_LIBRARY_PATH+x}" ]' in deactivate_script(recipe)


ACTIVATE_TEMPLATE = "# venv\ndeactivate () {\n    unset VIRTUAL_ENV\n}\ndeactivate nondestructive\nVIRTUAL_ENV=/v\n"


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_hooks_are_added_once_whatever_surrounds_them(extra: str) -> None:
    text = ACTIVATE_TEMPLATE + extra
    once = add_hooks(text)
    assert hooked(once) == {"activate": True, "deactivate": True}
    assert add_hooks(once) == once
    assert once.replace("\n    " + once.split("\n    ")[1].split("\n")[0], "", 1).startswith("# venv\ndeactivate () {")


def test_an_activate_script_without_a_deactivate_function_is_refused() -> None:
    with pytest.raises(ValueError, match="no `deactivate"):
        add_hooks("export VIRTUAL_ENV=/v\n")


@given(st.from_regex(r"3\.\d{1,2}\.\d{1,2}", fullmatch=True), st.sampled_from(["version", "version_info"]))
def test_pyvenv_cfg_version_is_read_from_venv_and_virtualenv(tmp_path_factory, version: str, key: str) -> None:
    where = tmp_path_factory.mktemp("v")
    suffix = ".final.0" if key == "version_info" else ""
    (where / "pyvenv.cfg").write_text(f"home = /usr/bin\n{key} = {version}{suffix}\n")
    assert venv_version(where) == version


def test_setup_hooks_a_real_venv_and_deactivate_restores_everything(tmp_path: Path) -> None:
    """The activation step on a real venv (made by this Python), then bash: activate, deactivate."""
    prefix = tmp_path / "my venv"
    venv.EnvBuilder(with_pip=False).create(str(prefix))
    version = "{}.{}".format(*sys.version_info[:2])
    recipe = tmp_path / "r.yml"
    recipe.write_text(
        f"name: r\nkind: venv\npython: '{version}'\nactivate:\n"
        "  LD_LIBRARY_PATH: {prepend: ['{site_packages}/nvidia/cudnn/lib']}\n"
        "  XLA_FLAGS: {set: '--xla_gpu_cuda_data_dir=\"{site_packages}/nvidia/cuda_nvcc\"'}\n"
    )
    done = doctor(
        "setup",
        "--recipe",
        str(recipe),
        "--prefix",
        str(prefix),
        "--only",
        "activation",
        "--yes",
        "-q",
        env={"XDG_STATE_HOME": str(tmp_path / "state")},
    )
    assert done.returncode == 0, done.stderr
    again = doctor(
        "setup",
        "--recipe",
        str(recipe),
        "--prefix",
        str(prefix),
        "--only",
        "activation",
        "--yes",
        "-q",
        env={"XDG_STATE_HOME": str(tmp_path / "state")},
    )
    assert "Nothing to do" in again.stdout + again.stderr
    script = (
        "export PS1='$ ' LD_LIBRARY_PATH=/opt/x; unset XLA_FLAGS; env | sort > \"$1/before\"\n"
        'source "$1/my venv/bin/activate"; echo "LD=$LD_LIBRARY_PATH"; echo "XLA=$XLA_FLAGS"\n'
        'source "$1/my venv/bin/activate"; echo "LD2=$LD_LIBRARY_PATH"\n'
        'deactivate; env | sort > "$1/after"; diff "$1/before" "$1/after" && echo RESTORED'
    )
    out = subprocess.run(["bash", "-c", script, "bash", str(tmp_path)], capture_output=True, text=True).stdout
    site = f"{prefix}/lib/python{version}/site-packages"
    assert f"LD={site}/nvidia/cudnn/lib:/opt/x\n" in out and f"LD2={site}/nvidia/cudnn/lib:/opt/x\n" in out, out
    assert f'XLA=--xla_gpu_cuda_data_dir="{site}/nvidia/cuda_nvcc"' in out
    assert out.strip().endswith("RESTORED"), out


def test_activate_commands_fit_the_machine() -> None:
    assert activate_command("venv", "/a b") == "source '/a b'/bin/activate"
    assert activate_command("conda", "/e", "merlin") == "conda activate merlin"
    no_conda = activate_command("conda", "/e", "merlin", has_conda=False)
    assert "conda activate" not in no_conda.split("#")[0] and ". /e/etc/conda/activate.d/merlin-doctor.sh" in no_conda


# --- fixes in the judged env's kind -----------------------------------------------------------------


def test_cudnn_9_from_the_cu11_wheel_names_its_owner_and_the_pinned_wheel(healthy: dict) -> None:
    v = judge(_cudnn_9_from_pip(healthy, "venv"), "tf210-pip", "cuda.libcudnn")["cuda.libcudnn"]
    assert v.status is Status.FAIL and "(pip:nvidia-cudnn-cu11 9.0.0.312)" in v.summary
    assert (v.fix, v.step) == ("python -m pip install nvidia-cudnn-cu11==8.6.0.163", "pip")


@pytest.mark.parametrize(
    "kind, recipe, fix, step",
    [
        ("venv", "tf210-cuda112", "python -m pip install nvidia-cudnn-cu11==8.6.0.163", "pip"),
        # the default recipe takes cuDNN from pip in its conda env too (the one TensorRT needs)
        ("conda", "tf210-cuda112", "python -m pip install nvidia-cudnn-cu11==8.6.0.163", "pip"),
        ("system", "tf210-cuda112", "# cuDNN comes from the system's CUDA installation", None),
        ("venv", "merlin-tensorflow-23.02", "docker pull nvcr.io/nvidia/merlin/merlin-tensorflow:23.02", None),
    ],
)
def test_each_fix_speaks_the_env_kind(healthy: dict, kind: str, recipe: str, fix: str, step) -> None:
    v = judge(_cudnn_9_from_pip(healthy, kind), recipe, "cuda.libcudnn")["cuda.libcudnn"]
    assert v.fix.startswith(fix) and v.step == step, (v.fix, v.step)


def test_a_conda_fix_carries_the_recipes_spec_quoted(healthy: dict) -> None:
    """A recipe's conda spec reaches the printed command only as one quoted word (no glob, no redirect)."""
    recipe = load_recipe("tf210-cuda112")
    recipe.conda_dependencies = [
        d if not d.startswith("cudatoolkit") else "cudatoolkit>=11.2,<11.3" for d in recipe.conda_dependencies
    ]
    snap = copy.deepcopy(healthy)
    snap["probes"]["cuda_libs"]["env"] = {"prefix": VENV, "kind": "conda", "activated": True, "has_conda": True}
    entry = next(e for e in snap["probes"]["cuda_libs"]["libraries"] if e["soname"] == "libcudart.so.11.0")
    entry.update(loaded=False, error="libcudart.so.11.0: cannot open shared object file", path=None, copies=[])
    v = judge_facts(snap, recipe, only=["cuda.libcudart"])["cuda.libcudart"]
    assert (v.fix, v.step) == ("conda install -c conda-forge 'cudatoolkit>=11.2,<11.3'", "env")


def _not_on_path(healthy: dict, activated: bool, folder: str = "cudnn") -> dict:
    snap = copy.deepcopy(healthy)
    snap["probes"]["cuda_libs"]["env"] = {"prefix": VENV, "kind": "venv", "activated": activated, "has_conda": False}
    there = f"{SITE}/nvidia/{folder}/lib/libcudnn.so.8"
    _cudnn(snap).update(
        loaded=False,
        error="not found",
        path=None,
        copies=[{"path": there, "realpath": there, "on_search_path": False, "version": "8.6.0", "owner": None}],
    )
    return snap


def test_a_library_off_the_path_is_fixed_by_activating_or_by_rewriting_activation(healthy: dict) -> None:
    off = judge(_not_on_path(healthy, activated=False), "tf210-pip", "cuda.libcudnn")["cuda.libcudnn"]
    assert off.fix.startswith(f"source {VENV}/bin/activate  #") and off.step is None
    stale = judge(_not_on_path(healthy, activated=True), "tf210-pip", "cuda.libcudnn")["cuda.libcudnn"]
    assert stale.fix == f"merlin-doctor fix --only activation --recipe tf210-pip && source {VENV}/bin/activate"
    assert stale.step == "activation"
    other = judge(_not_on_path(healthy, activated=True, folder="elsewhere"), "tf210-pip", "cuda.libcudnn")
    assert other["cuda.libcudnn"].fix.startswith("export LD_LIBRARY_PATH=") and other["cuda.libcudnn"].step is None


def test_tensorrt_8_behind_the_so7_links_is_the_intended_state_not_a_circular_fix(healthy: dict) -> None:
    snap = copy.deepcopy(healthy)
    for entry in snap["probes"]["cuda_libs"]["libraries"]:
        if entry["soname"].startswith("libnvinfer"):
            entry.update(loaded=True, version="8.5.3", error=None)
    assert judge(snap, "tf210-pip", "cuda.tensorrt")["cuda.tensorrt"].status is Status.PASS
    v = judge(snap, "tf210-cuda112", "cuda.tensorrt")["cuda.tensorrt"]  # no expect.tensorrt: said, not "fixed"
    assert v.status is Status.WARN and v.fix is None and v.step is None


# --- packages -----------------------------------------------------------------------------------------

NVIDIA_RECORDS = {
    "nvidia-cublas-cu11": ["nvidia/__init__.py", "nvidia/cublas/__init__.py", "nvidia/cublas/lib/libcublas.so.11"],
    "nvidia-cudnn-cu11": ["nvidia/__init__.py", "nvidia/cudnn/__init__.py", "nvidia/cudnn/lib/libcudnn.so.8"],
}


@pytest.mark.parametrize(
    "records, clash",
    [
        (NVIDIA_RECORDS, False),
        ({"cupy": ["cupy/__init__.py", "cupy/_core.so"], "cupy-cuda11x": ["cupy/__init__.py", "cupy/_core.so"]}, True),
        ({"nvidia-ml-py": ["pynvml.py"], "pynvml": ["pynvml/__init__.py", "pynvml/nvml.py"]}, True),
    ],
)
def test_a_shared_namespace_is_no_duplicate_but_shared_files_are(records: dict, clash: bool) -> None:
    name = next(iter(records.values()))[0].split("/")[0].split(".")[0]
    found = _overlap(records, name)
    assert (bool(found["clashing_files"]) or found["file_and_dir"]) is clash


def test_nvidia_wheels_in_the_env_pass_packages_duplicates(healthy: dict) -> None:
    snap = copy.deepcopy(healthy)
    snap["probes"]["packages"]["shared_modules"]["nvidia"] = {
        "distributions": sorted(NVIDIA_RECORDS),
        "kinds": ["package"],
        **_overlap(NVIDIA_RECORDS, "nvidia"),
    }
    v = judge(snap, "tf210-pip", "packages.duplicates")["packages.duplicates"]
    assert v.status is Status.PASS and "nvidia from" not in v.summary and "nvidia" not in v.evidence["modules"]


def test_the_packages_probe_reads_the_records(tmp_path: Path) -> None:
    """Two wheels' dist-info as pip leaves them, sharing nvidia/: the probe finds no clashing file."""
    target = tmp_path / "site"
    for dist, files in NVIDIA_RECORDS.items():
        info = target / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n\n")
        (info / "top_level.txt").write_text("nvidia\n")
        (info / "RECORD").write_text("".join(f"{f},sha256=x,0\n" for f in files) + f"{info.name}/RECORD,,\n")
        for rel in files:
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            (target / rel).write_text("")
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); from merlin_doctor.probes.packages import probe;"
        "from merlin_doctor.probes.context import ProbeContext;"
        "print(json.dumps(probe(ProbeContext())['shared_modules']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        capture_output=True,
        text=True,
        cwd=str(REPO),
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        check=True,
    ).stdout
    shared = json.loads(out)["nvidia"]
    assert shared["distributions"] == sorted(NVIDIA_RECORDS) and shared["kinds"] == ["package"]
    assert shared["clashing_files"] == [] and not shared["file_and_dir"], shared


def test_a_venv_recipe_without_its_python_on_the_machine_says_so(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yml"
    recipe.write_text("name: r\nkind: venv\npython: '3.1'\npip: [{name: x, requirements: [six]}]\n")
    done = doctor(
        "setup",
        "--recipe",
        str(recipe),
        "--prefix",
        str(tmp_path / "v"),
        "--yes",
        env={"XDG_STATE_HOME": str(tmp_path / "state")},
    )
    assert done.returncode == 1 and not (tmp_path / "v").exists()
    assert "no Python 3.1 that can make a venv was found" in done.stderr and "--python PATH" in done.stderr, done.stderr
    wrong = doctor(
        "setup",
        "--recipe",
        str(recipe),
        "--prefix",
        str(tmp_path / "v"),
        "--yes",
        "--python",
        sys.executable,
        env={"XDG_STATE_HOME": str(tmp_path / "state")},
    )
    assert wrong.returncode == 1 and f"--python {sys.executable} is Python" in wrong.stderr, wrong.stderr
