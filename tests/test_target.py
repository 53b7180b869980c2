"""The env judged from outside: which env, its activation, where its probes run, and the
pieces that must work in a bare interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import doctor
from hypothesis import given
from hypothesis import strategies as st
from packaging.utils import canonicalize_name as packaging_canonicalize

from merlin_doctor.errors import InputError
from merlin_doctor.probes import packages
from merlin_doctor.probes.context import ProbeContext
from merlin_doctor.probes.isolate import package_root
from merlin_doctor.probes.registry import PROBES, probe_named
from merlin_doctor.probes.scheduler import child_python, env_python, run_probe, runs_isolated
from merlin_doctor.recipe import load_recipe
from merlin_doctor.target import judged_env, probe_context

pytestmark = pytest.mark.per_interpreter  # a doctor on any supported Python judges another env the same way


def _venv(root: Path) -> Path:
    """A bare venv of this Python (no pip: nothing of the doctor's dependencies in it)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=60)
    return root


def test_the_judged_envs_python_probes_run_with_its_interpreter_and_the_rest_here(tmp_path):
    ctx = probe_context(load_recipe("cpu"), str(_venv(tmp_path / "env")), None, timeout=30)
    assert ctx.python == str(tmp_path / "env" / "bin" / "python") and ctx.env["VIRTUAL_ENV"] == str(tmp_path / "env")
    in_env = {p.name for p in PROBES if child_python(p, ctx)}
    assert in_env == {"interpreter", "packages", "tf_build", "tensorflow", "e2e"}
    assert runs_isolated(probe_named("packages"), ctx) and not runs_isolated(probe_named("tensorflow"), ctx)
    assert env_python(ctx) == ctx.python, "the slow probes start their own child with it"
    here = probe_context(load_recipe("cpu"), None, None, timeout=30)
    assert here.python is None and env_python(here) == sys.executable
    assert not any(child_python(p, here) for p in PROBES)


def test_a_bare_env_is_judged_by_its_own_interpreter_with_the_standard_library_only(tmp_path):
    """No click, yaml or packaging in the env: its interpreter and packages probes still answer."""
    ctx = probe_context(load_recipe("cpu"), str(_venv(tmp_path / "env")), None, timeout=30)
    facts = {name: run_probe(probe_named(name), ctx) for name in ("interpreter", "packages", "tf_build")}
    assert facts["interpreter"]["prefix"] == str(tmp_path / "env"), facts
    assert facts["interpreter"]["env"]["VIRTUAL_ENV"] == str(tmp_path / "env")
    assert not {"click", "pyyaml", "merlin-doctor"} & set(facts["packages"]["distributions"]), (
        "the doctor's own dependencies are not the env's"
    )
    assert facts["tf_build"]["found"] is False


def test_children_get_the_doctors_package_alone_on_their_path():
    root = Path(package_root())
    assert sorted(p.name for p in root.iterdir()) == ["merlin_doctor"]
    assert (root / "merlin_doctor" / "probes" / "child.py").is_file()


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"prefix": "/nonexistent/env"}, "no such directory"),
        ({"name": "merlin", "prefix": "/tmp"}, "not both"),
    ],
)
def test_bad_env_flags_are_input_errors(flags, message):
    with pytest.raises(InputError, match=message):
        judged_env(load_recipe("cpu"), flags.get("prefix"), flags.get("name"))


def test_an_unknown_env_name_is_a_usage_error(tmp_path):
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "CONDA_ENVS_PATH": str(tmp_path / "envs")}
    result = doctor("check", "--fast", "--name", "no-such-env", env=env)
    assert result.returncode == 2 and "no env named 'no-such-env'" in result.stderr, result.stderr


def test_host_disk_judges_the_running_interpreters_env_when_no_env_is_active():
    """A Jupyter kernel has no VIRTUAL_ENV or CONDA_PREFIX: its env is its own sys.prefix, not $HOME."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}
    facts = run_probe(probe_named("host"), ProbeContext(env=env))
    assert facts["disk"]["path"] == sys.prefix


@given(st.text(alphabet="abcXYZ019-_.", min_size=1, max_size=20))
def test_the_packages_probe_normalizes_names_as_packaging_does(name):
    assert packages.canonicalize_name(name) == packaging_canonicalize(name)


def test_the_ple_in_an_env_without_pyyaml_says_what_is_missing(tmp_path):
    from merlin_doctor.e2e import ple_command
    from merlin_doctor.probes.isolate import run_json_command

    python = str(_venv(tmp_path / "env") / "bin" / "python")
    result = run_json_command(ple_command(python), 60)
    assert (
        result["error"] == f"{python} cannot import yaml, which the PLE check needs in the env: "
        f"{python} -m pip install pyyaml"
    )


def test_fixes_judged_from_outside_run_the_envs_own_python():
    from merlin_doctor.target import env_command

    python = "/my envs/tf/bin/python"
    fix = "python -m pip install 'tensorflow==2.10.0' && python -m pip install x; python -m pip check"
    quoted = "'/my envs/tf/bin/python'"
    assert env_command(fix, python) == (
        f"{quoted} -m pip install 'tensorflow==2.10.0' && {quoted} -m pip install x; {quoted} -m pip check"
    )
    assert env_command("conda install -c conda-forge cudnn=8.1.0  # python -m is not run", python).startswith("conda ")
    assert env_command("sudo modprobe nvidia", python) == "sudo modprobe nvidia"


def test_check_from_outside_prints_fixes_with_the_envs_interpreter(tmp_path):
    env = _venv(tmp_path / "env")
    data = json.loads(
        doctor("check", "--prefix", str(env), "--recipe", "cpu", "--cpu-ok", "--only", "tf.import", "--json").stdout
    )
    fix = {v["id"]: v for v in data["verdicts"]}["tf.import"]["fix"]
    assert fix.startswith(f"{env / 'bin' / 'python'} -m pip install"), fix


def test_a_repair_judged_from_outside_names_the_env_it_repairs():
    """After `check --prefix DIR`, `merlin-doctor fix` alone would repair the shell's env (or refuse)."""
    from merlin_doctor.target import fix_for_env, in_env_commands
    from merlin_doctor.verdict import Status, Verdict

    prefix = "/my envs/tf"
    assert fix_for_env("merlin-doctor fix --only links --recipe tf210-pip", prefix) == (
        "merlin-doctor fix --prefix '/my envs/tf' --only links --recipe tf210-pip"
    )
    assert (
        fix_for_env("merlin-doctor fix --prefix /x --only links", prefix)
        == "merlin-doctor fix --prefix /x --only links"
    )
    seen = []
    each = in_env_commands(None, prefix, seen.append)
    verdict = Verdict("env.links", Status.FAIL, "links missing", fix="merlin-doctor fix --only links")
    each(verdict)
    assert seen == [verdict] and verdict.fix == "merlin-doctor fix --prefix '/my envs/tf' --only links"
    assert in_env_commands(None, None, seen.append) == seen.append, "judged from inside: fixes stay as they are"


def test_name_finds_a_venv_recipes_env_where_setup_puts_it(tmp_path, monkeypatch):
    """`--name ENV` with a venv recipe looks in $WORKON_HOME (setup's place for named venvs), not conda's."""
    from merlin_doctor.recipe import load_recipe
    from merlin_doctor.target import judged_env

    monkeypatch.setenv("WORKON_HOME", str(tmp_path))
    env = tmp_path / "merlin-pip"
    (env / "bin").mkdir(parents=True)
    (env / "pyvenv.cfg").write_text("home = /usr/bin\n")
    judged = judged_env(load_recipe("tf210-pip"), None, "merlin-pip")
    assert judged is not None and judged.prefix == str(env) and judged.kind == "venv"
    with pytest.raises(InputError, match="no venv named 'other'"):
        judged_env(load_recipe("tf210-pip"), None, "other")
