"""activated.py is THE model of an activated env: it must agree with what bash gets by
sourcing the generated scripts, and the probe, the fix planner and the checks use it."""

from __future__ import annotations

import os
import subprocess

import pytest

from merlin_doctor.activated import SAVED, WAS_UNSET, ActivatedEnv
from merlin_doctor.activation import activate_script, deactivate_script
from merlin_doctor.probes.context import ProbeContext
from merlin_doctor.probes.cuda_libs import search_path
from merlin_doctor.recipe import load_recipe

RECIPE = load_recipe("tf210-cuda112")
PREFIX_VARS = {"conda": "CONDA_PREFIX", "venv": "VIRTUAL_ENV"}
STARTS = {
    "unset": {},
    "empty": {"LD_LIBRARY_PATH": "", "XLA_FLAGS": ""},
    "duplicates": {"LD_LIBRARY_PATH": "/usr/local/cuda-10.2/lib64:{prefix}/lib:/usr/local/cuda-10.2/lib64"},
    "spaces": {"LD_LIBRARY_PATH": "/opt/my libs/lib:/a b", "XLA_FLAGS": "--xla_foo=1 --bar"},
}


def _bash_env(tmp_path, kind: str, prefix: str, start: dict, times: int) -> dict:
    """The environment bash has after activating `times` times (conda re-activation runs
    deactivate.d first; a venv's `activate` calls `deactivate` first)."""
    (tmp_path / "on.sh").write_text(activate_script(RECIPE, kind))
    (tmp_path / "off.sh").write_text(deactivate_script(RECIPE))
    clean = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "XLA_FLAGS")}
    env = dict(clean, **{k: v.replace("{prefix}", prefix) for k, v in start.items()})
    once = f". '{tmp_path}/off.sh' 2>/dev/null; export {PREFIX_VARS[kind]}='{prefix}'; . '{tmp_path}/on.sh'"
    first = f"export {PREFIX_VARS[kind]}='{prefix}'; . '{tmp_path}/on.sh'"
    script = "; ".join([first] + [once] * (times - 1)) + "; env -0"
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, check=True).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item), env


def _touched(env: dict) -> dict:
    names = [v.name for v in RECIPE.activate]
    keys = names + [SAVED + n for n in names] + [WAS_UNSET + n for n in names]
    return {k: env.get(k) for k in keys}


@pytest.mark.parametrize("kind", ["conda", "venv"])
@pytest.mark.parametrize("start", sorted(STARTS))
@pytest.mark.parametrize("times", [1, 2])
def test_the_model_is_what_bash_gets(tmp_path, kind, start, times):
    prefix = str(tmp_path / "my env")
    bash, before = _bash_env(tmp_path, kind, prefix, STARTS[start], times)
    model = ActivatedEnv(RECIPE, prefix, kind).environ(before)
    assert _touched(model) == _touched(bash)
    assert model[PREFIX_VARS[kind]] == bash[PREFIX_VARS[kind]] == prefix
    again = ActivatedEnv(RECIPE, prefix, kind).environ(model)
    assert _touched(again) == _touched(model), "activating an activated env changes nothing"


def test_deactivation_restores_what_our_script_changed():
    env = {"LD_LIBRARY_PATH": "/a:/b", "PATH": "/usr/bin"}
    activated = ActivatedEnv(RECIPE, "/e")
    undone = activated.deactivated(activated.environ(env))
    assert undone["LD_LIBRARY_PATH"] == "/a:/b" and "XLA_FLAGS" not in undone
    assert not [k for k in undone if k.startswith(("_MERLIN_DOCTOR_OLD_", "_MERLIN_DOCTOR_UNSET_"))]


def test_the_library_probe_searches_the_path_activation_gives(tmp_path):
    """The review's case: a CUDA 10.2 directory before the env's lib; the activate script keeps
    the old value, duplicates and all, and the probe must judge that same order."""
    prefix = str(tmp_path / "env")
    (tmp_path / "env" / "conda-meta").mkdir(parents=True)
    env = {"LD_LIBRARY_PATH": f"/usr/local/cuda-10.2/lib64:{prefix}/lib", "PATH": "/usr/bin", "CONDA_PREFIX": prefix}
    model = ActivatedEnv(RECIPE, prefix).library_path(env)
    assert model == [
        f"{prefix}/lib/python3.9/site-packages/nvidia/cudnn/lib",
        f"{prefix}/lib",
        f"{prefix}/lib/python3.9/site-packages/tensorrt",
        "/usr/local/cuda-10.2/lib64",
        f"{prefix}/lib",
    ]
    assert search_path(ProbeContext(recipe_path=RECIPE.path, env=env)) == model
    bash, _ = _bash_env(tmp_path, "conda", prefix, {"LD_LIBRARY_PATH": env["LD_LIBRARY_PATH"]}, 1)
    assert bash["LD_LIBRARY_PATH"].split(":") == model
