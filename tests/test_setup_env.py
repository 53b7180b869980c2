"""setup_env / `merlin-doctor setup` and `fix`, the whole flow for real and offline.

An offline conda channel and hand-written wheels (tests/setup_world.py) stand in for
conda-forge and PyPI; the real rattler engine creates the env, the env's own pip installs
the wheels, and every run is the real CLI in a subprocess. The paths hold spaces.

"Inside the env" for `merlin-doctor check` means: the doctor runs from the test venv with
the environment a shell has after `conda activate` of the env (CONDA_PREFIX, PATH, and
the variables its activate.d script sets, read from bash after sourcing it). The env's
Python is a stand-in without merlin-doctor, so the checks of the interpreter's own
packages (packages.*, interpreter.*) are not env-level here; activation.* and env.* are.

conda, mamba and micromamba cannot be installed here: their exact command lines are
asserted from the dry-run plan.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from conda_channel import find_python39, require_rattler
from conftest import REPO, doctor
from setup_world import SETUP_ENV, World, make_world

from merlin_doctor.activated import ActivatedEnv
from merlin_doctor.activation import activate_script, deactivate_script
from merlin_doctor.probes.activation import xla_data_dir
from merlin_doctor.recipe import load_recipe
from merlin_doctor.setup.steps import PAUSE_VAR
from merlin_doctor.setup.steps.env import spec_satisfied

pytestmark = pytest.mark.per_interpreter  # the doctor must behave the same on each Python it supports


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    require_rattler()
    return make_world(tmp_path_factory.mktemp("setup") / "setup world")


def run_until_paused(world: World, point: str, *args: str, timeout: float = 120) -> int:
    """Start a run that stops at `point` (the steps' test hook), kill -9 it there; return its PID."""
    cmd = [
        sys.executable,
        "-m",
        "merlin_doctor",
        "setup",
        "--recipe",
        str(world.recipe),
        "--engine",
        "rattler",
        "--yes",
        *args,
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**world.env, PAUSE_VAR: point},
        cwd=str(REPO),
    )
    assert proc.stderr is not None
    seen: List[str] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith(f"merlin-doctor: test pause at {point} (pid"):
                os.kill(proc.pid, signal.SIGKILL)
                return proc.pid
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    pytest.fail(f"the run never paused at {point!r}:\n{''.join(seen)}")


def tree(prefix: Path) -> Dict[str, tuple]:
    """Every entry under the prefix: kind, link target or content hash, and mtime."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(prefix):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            if path.is_symlink():
                out[str(path.relative_to(prefix))] = ("link", os.readlink(path), st.st_mtime_ns)
            elif path.is_file():
                out[str(path.relative_to(prefix))] = (
                    "file",
                    hashlib.sha256(path.read_bytes()).hexdigest(),
                    st.st_mtime_ns,
                )
    return out


def converged_state(prefix: Path) -> dict:
    """What the recipe promises, read from the files themselves (mtimes left out)."""
    meta = {}
    for record in (prefix / "conda-meta").glob("*.json"):
        data = json.loads(record.read_text())
        meta[data["name"]] = data["version"]
    site = prefix / "lib" / "python3.9" / "site-packages"
    trt = site / "tensorrt"
    return {
        "conda": meta,
        "pip": sorted(p.name for p in site.glob("*.dist-info")),
        "links": {n: os.readlink(trt / n) for n in ("libnvinfer.so.7", "libnvinfer_plugin.so.7")},
        "scripts": {
            d: (prefix / "etc" / "conda" / d / "merlin-doctor.sh").read_text() for d in ("activate.d", "deactivate.d")
        },
        "libdevice": hashlib.sha256(
            (prefix / "lib" / "nvvm" / "libdevice" / "libdevice.10.bc").read_bytes()
        ).hexdigest(),
    }


@pytest.fixture(scope="module")
def converged(world: World):
    """One env made by ./setup_env from nothing; returns (prefix, the run)."""
    prefix = world.prefix("merlin env")
    done = world.setup_env(prefix)
    assert done.returncode == 0, done.stdout + done.stderr
    return prefix, done


# --- the whole flow ------------------------------------------------------------------------


def test_setup_env_creates_the_env_the_recipe_describes(converged, world: World) -> None:
    prefix, done = converged
    recipe = load_recipe(str(world.recipe))
    state = converged_state(prefix)
    assert {k: state["conda"].get(k) for k in ("python", "cudatoolkit", "cudnn", "cuda-nvcc")} == {
        "python": find_python39()[1],
        "cudatoolkit": "11.2.2",
        "cudnn": "8.1.0",
        "cuda-nvcc": "11.3.58",
    }
    assert "pip" in state["conda"]
    check = f"Next: merlin-doctor check --prefix {shlex.quote(str(prefix))} --recipe {shlex.quote(str(world.recipe))}"
    assert check in done.stdout, "setup ends with the exact command that judges what it built"
    assert {"mdtest_core-1.0.dist-info", "tensorrt-8.5.3.1.dist-info"} <= set(state["pip"])
    assert state["links"] == {"libnvinfer.so.7": "libnvinfer.so.8", "libnvinfer_plugin.so.7": "libnvinfer_plugin.so.8"}
    assert state["scripts"] == {"activate.d": activate_script(recipe), "deactivate.d": deactivate_script(recipe)}
    assert state["libdevice"] == hashlib.sha256((prefix / "lib" / "libdevice.10.bc").read_bytes()).hexdigest()
    for step in ("env", "pip", "links", "activation", "copies"):
        assert f"[✓] {step:<11} done" in done.stdout, done.stdout
    assert "… linking cudatoolkit" in done.stderr and "Successfully installed tensorrt-8.5.3.1" in done.stderr
    log = Path(done.stdout.split("Log: ")[1].splitlines()[0])
    assert log.parent == world.root / "state" / "merlin-doctor" / "logs"
    text = log.read_text()
    assert "-m pip install --find-links" in text and "linked " in text and "copied " in text and "wrote " in text


def test_rerun_of_a_converged_env_changes_nothing(converged, world: World) -> None:
    prefix, _ = converged
    before = tree(prefix)
    done = world.setup_env(prefix, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [p["done"] for p in report["plan"]] == [True] * 5
    assert report["outcomes"] == [] and report["log"] is None
    assert tree(prefix) == before, "a rerun must not touch a single file"


def test_activate_d_sets_the_variables_and_deactivate_d_restores_them_byte_for_byte(converged, world: World) -> None:
    prefix, _ = converged
    recipe = load_recipe(str(world.recipe))
    scripts = prefix / "etc" / "conda"
    dump = 'env -0 > "$OUT/$1"'
    script = f"""
set -e
snap() {{ {dump}; }}
export LD_LIBRARY_PATH='/usr/lib/x86_64-linux-gnu/x:/opt/a b'
unset XLA_FLAGS
export CONDA_PREFIX={shlex.quote(str(prefix))}
snap before
. {shlex.quote(str(scripts / "activate.d" / "merlin-doctor.sh"))}
snap during
. {shlex.quote(str(scripts / "deactivate.d" / "merlin-doctor.sh"))}
snap after
"""
    out = world.root / "snaps"
    out.mkdir(exist_ok=True)
    subprocess.run(["bash", "-c", script], env={"PATH": os.environ["PATH"], "OUT": str(out)}, check=True)
    read = lambda name: dict(e.split("=", 1) for e in (out / name).read_bytes().decode().split("\0") if e)  # noqa: E731
    before, during, after = read("before"), read("during"), read("after")
    before.pop("_", None), during.pop("_", None), after.pop("_", None)
    assert after == before
    want = ActivatedEnv(recipe, str(prefix)).expected()
    assert during["LD_LIBRARY_PATH"] == ":".join(want["LD_LIBRARY_PATH"]["contains"] + [before["LD_LIBRARY_PATH"]])
    assert during["XLA_FLAGS"] == want["XLA_FLAGS"]["equals"][0]
    assert xla_data_dir(during["XLA_FLAGS"]) == f"{prefix}/lib"


def _activated(prefix: Path, base: Dict[str, str]) -> Dict[str, str]:
    """The environment after `conda activate`: PATH and CONDA_PREFIX, then activate.d sourced in bash."""
    script = (
        f'export CONDA_PREFIX={shlex.quote(str(prefix))}; export PATH="$CONDA_PREFIX/bin:$PATH"; '
        f". {shlex.quote(str(prefix / 'etc/conda/activate.d/merlin-doctor.sh'))}; env -0"
    )
    raw = subprocess.run(["bash", "-c", script], env=base, capture_output=True, check=True).stdout
    return dict(e.split("=", 1) for e in raw.decode().split("\0") if e)


def test_check_inside_the_env_passes_its_env_level_checks(converged, world: World) -> None:
    prefix, _ = converged
    result = doctor(
        "check",
        "--fast",
        "--recipe",
        str(world.recipe),
        "--only",
        "activation",
        "--only",
        "env",
        "--json",
        env=_activated(prefix, world.env),
    )
    verdicts = {v["id"]: (v["status"], v["summary"]) for v in json.loads(result.stdout)["verdicts"]}
    assert {
        "activation.scripts",
        "activation.applied",
        "activation.ld-path",
        "activation.libdevice",
        "activation.ptxas",
        "env.links",
        "env.copies",
    } <= set(verdicts)
    assert {k: s for k, (s, _) in verdicts.items() if s != "pass"} == {}, verdicts
    assert result.returncode == 0


# --- killed at any point, resumed ----------------------------------------------------------


def test_a_run_killed_after_each_step_or_inside_one_is_finished_by_the_next(converged, world: World) -> None:
    """kill -9 inside the engine's install, after each step and between two pip groups."""
    reference = converged_state(converged[0])
    prefix = world.prefix("killed env")
    points = ["env:linking cudatoolkit", "env", "pip:core", "pip", "links", "activation", "copies"]
    for point in points:
        run_until_paused(world, point, "--prefix", str(prefix))
    done = world.setup_env(prefix)
    assert done.returncode == 0, done.stdout + done.stderr
    assert converged_state(prefix) == reference
    again = world.setup_env(prefix, "--json")
    assert json.loads(again.stdout)["outcomes"] == []


def test_a_kill_inside_the_engine_leaves_an_env_the_next_run_completes(world: World) -> None:
    prefix = world.prefix("torn env")
    run_until_paused(world, "env:linking cudnn", "--prefix", str(prefix), "--only", "env")
    assert (prefix / "conda-meta").is_dir(), "a killed run leaves a conda env, never a 'foreign' directory"
    done = world.setup_env(prefix, "--only", "env")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (prefix / "lib" / "libcudnn.so.8").is_file() and (prefix / "bin" / "ptxas").is_file()


def test_a_second_run_waits_then_names_the_lock_and_its_holder(world: World) -> None:
    prefix = world.prefix("locked env")
    (prefix / "conda-meta").mkdir(parents=True)
    cmd = [
        sys.executable,
        "-m",
        "merlin_doctor",
        "setup",
        "--recipe",
        str(world.recipe),
        "--prefix",
        str(prefix),
        "--only",
        "activation",
        "--yes",
    ]
    holder = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**world.env, PAUSE_VAR: "activation"},
        cwd=str(REPO),
    )
    try:
        assert holder.stderr is not None
        while "test pause at activation" not in holder.stderr.readline():
            assert holder.poll() is None, "the first run ended before it paused"
        started = time.monotonic()
        second = subprocess.run(cmd, capture_output=True, text=True, env=world.env, cwd=str(REPO), timeout=60)
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
        holder.stderr.close()
    assert second.returncode == 1
    assert f"PID {holder.pid} (`merlin-doctor setup`" in second.stderr
    assert f"{prefix}.merlin-doctor.lock" in second.stderr and "waited 3 s" in second.stderr
    assert waited >= 3
    third = subprocess.run(cmd, capture_output=True, text=True, env=world.env, cwd=str(REPO), timeout=60)
    assert third.returncode == 0, "the lock of a killed run goes with its process"


# --- fix ------------------------------------------------------------------------------------


def test_fix_repairs_exactly_what_was_broken(world: World) -> None:
    prefix = world.prefix("broken env")
    assert world.setup_env(prefix).returncode == 0
    trt = prefix / "lib" / "python3.9" / "site-packages" / "tensorrt"
    activate = prefix / "etc" / "conda" / "activate.d" / "merlin-doctor.sh"
    (trt / "libnvinfer.so.7").unlink()
    (prefix / "lib" / "nvvm" / "libdevice" / "libdevice.10.bc").unlink()
    activate.write_text(activate.read_text() + "export LD_LIBRARY_PATH=/somewhere/else\n")
    broken = tree(prefix)

    fix = ["fix", "--recipe", str(world.recipe), "--prefix", str(prefix)]
    dry = doctor(*fix, "--dry-run", env=world.env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"ln -s libnvinfer.so.8 {shlex.quote(str(trt / 'libnvinfer.so.7'))}" in dry.stdout
    assert "replaces an older merlin-doctor script" in dry.stdout and "libdevice.10.bc" in dry.stdout
    assert tree(prefix) == broken, "--dry-run changes nothing"
    assert "Re-checked" not in dry.stdout, "nothing ran, so nothing was checked again"

    done = doctor(*fix, "--yes", "--json", env=world.env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert [o["id"] for o in report["outcomes"] if o["applied"]] == ["links", "activation", "copies"]
    repaired = tree(prefix)
    changed = {p for p in set(broken) | set(repaired) if broken.get(p) != repaired.get(p)}
    assert changed == {
        "lib/python3.9/site-packages/tensorrt/libnvinfer.so.7",
        "lib/nvvm/libdevice/libdevice.10.bc",
        "etc/conda/activate.d/merlin-doctor.sh",
    }
    before = {v["id"]: v["status"] for v in report["before"]}
    after = {v["id"]: v["status"] for v in report["after"]}
    for check in ("env.links", "env.copies", "activation.scripts"):
        assert (before[check], after[check]) == ("fail", "pass")
    assert converged_state(prefix)["scripts"]["activate.d"] == activate_script(load_recipe(str(world.recipe)))
    assert after["packages.required"] == "pass", "judged from outside with the env's own interpreter"
    assert report["notes"] == []


def test_fix_run_by_the_envs_own_python_reinstalls_a_missing_pip_group(converged, world: World, tf_python: str) -> None:
    """Run from the env's Python, the doctor judges the env's packages and `fix` runs the pip step.

    The env's Python is a stand-in without merlin-doctor, so it borrows the code from this
    checkout and the dependencies (click, PyYAML, ...) from the Python 3.9 test venv's site-packages.
    """
    prefix, _ = converged
    python = str(prefix / "bin" / "python")
    assert (
        subprocess.run(
            [python, "-m", "pip", "uninstall", "-y", "mdtest-core"], capture_output=True, env=world.env
        ).returncode
        == 0
    )
    deps = subprocess.run(
        [tf_python, "-c", "import click, os; print(os.path.dirname(os.path.dirname(click.__file__)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    env = dict(world.env, PYTHONPATH=os.pathsep.join([str(REPO), deps]))
    done = subprocess.run(
        [
            python,
            "-m",
            "merlin_doctor",
            "fix",
            "--recipe",
            str(world.recipe),
            "--prefix",
            str(prefix),
            "--yes",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(REPO),
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["notes"] == [], "the doctor runs in the env: nothing is left out"
    assert [o["id"] for o in report["outcomes"] if o["applied"]] == ["pip"]
    before = {v["id"]: v for v in report["before"]}
    assert before["packages.required"]["status"] == "fail" and before["packages.required"]["step"] == "pip"
    assert "mdtest-core==1.0 (found nothing)" in before["packages.required"]["summary"]
    assert {v["id"]: v["status"] for v in report["after"]}["packages.required"] == "pass"
    assert "mdtest_core-1.0.dist-info" in converged_state(prefix)["pip"]


def test_nothing_in_the_way_is_replaced_without_force(world: World) -> None:
    prefix = world.prefix("hand made env")
    trt = prefix / "lib" / "python3.9" / "site-packages" / "tensorrt"
    trt.mkdir(parents=True)
    (prefix / "conda-meta").mkdir()
    (trt / "libnvinfer.so.8").write_bytes(b"8")
    (trt / "libnvinfer.so.7").write_bytes(b"a real TensorRT 7")
    (trt / "libnvinfer_plugin.so.8").write_bytes(b"8")
    (trt / "libnvinfer_plugin.so.7").symlink_to("/somewhere/else.so")
    own = prefix / "etc" / "conda" / "deactivate.d" / "merlin-doctor.sh"
    own.parent.mkdir(parents=True)
    own.write_text("# my own script\n")

    refused = world.setup_env(prefix, "--only", "links", "--only", "activation")
    assert refused.returncode == 1
    assert "it is a real file, not made by merlin-doctor (--force replaces it)" in refused.stdout
    assert "a link to /somewhere/else.so" in refused.stdout
    assert (trt / "libnvinfer.so.7").read_bytes() == b"a real TensorRT 7" and own.read_text() == "# my own script\n"
    assert "[-] activation  not run: an earlier step failed" in refused.stdout

    forced = world.setup_env(prefix, "--only", "links", "--only", "activation", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert os.readlink(trt / "libnvinfer.so.7") == "libnvinfer.so.8"
    assert os.readlink(trt / "libnvinfer_plugin.so.7") == "libnvinfer_plugin.so.8"
    assert own.read_text() == deactivate_script(load_recipe(str(world.recipe)))


def test_an_optional_pip_group_that_fails_warns_and_a_required_one_fails(converged, world: World) -> None:
    prefix, _ = converged
    group = (
        "  - name: extras\n    requirements: [mdtest-absent==1.0]\n    find_links: [{wheels}]\n    no_index: true\n"
    ).format(wheels=json.dumps(str(world.root / "local wheels")))
    optional = world.write_recipe("optional.yml", group + "    optional: true\n    why: only demos use it\n")
    warned = world.setup_env(prefix, "--only", "pip", "--json", recipe=optional)
    assert warned.returncode == 0, warned.stderr
    (outcome,) = json.loads(warned.stdout)["outcomes"]
    assert (
        outcome["status"] == "warn"
        and "optional pip group 'extras' was not installed (only demos use it)" in outcome["summary"]
    )

    required = world.write_recipe("required.yml", group)
    failed = world.setup_env(prefix, "--only", "pip", recipe=required)
    assert failed.returncode == 1
    assert "[✗] pip" in failed.stdout and "pip group 'extras' failed to install" in failed.stdout
    assert "No matching distribution found for mdtest-absent==1.0" in failed.stdout


# --- the plan, engines and safety rules (no env is made) -------------------------------------

ARTICLE_STEPS = [
    # conda create -n ... python=3.9; conda install cudatoolkit cudnn; conda install -c nvidia cuda-nvcc
    # (cuDNN moves to pip, the one cuDNN 8 that TensorRT needs too: the env holds one)
    "python=3.9 cudatoolkit=11.2.2 nvidia::cuda-nvcc=11.3.58 pip",
    # pip install tensorflow / tensorrt / rapids (NVIDIA's index) / nvtabular, merlin-models, protobuf
    "bin/python -m pip install tensorflow==2.10.0",
    "bin/python -m pip install nvidia-cudnn-cu11==8.6.0.163",
    "bin/python -m pip install tensorrt==8.5.3.1",
    "-m pip install --extra-index-url https://pypi.nvidia.com 'cudf-cu11==23.4.*'",
    "nvtabular==23.8.0 merlin-models==23.8.0",
    "scipy protobuf==3.19.6",
    # ln -s libnvinfer.so.8 libnvinfer.so.7 (and the plugin)
    "ln -s libnvinfer.so.8 {prefix}/lib/python3.9/site-packages/tensorrt/libnvinfer.so.7",
    "ln -s libnvinfer_plugin.so.8 {prefix}/lib/python3.9/site-packages/tensorrt/libnvinfer_plugin.so.7",
    # LD_LIBRARY_PATH (the article: ~/.bashrc) and XLA_FLAGS in activate.d; the TensorRT dir it misses
    "write {prefix}/etc/conda/activate.d/merlin-doctor.sh: sets LD_LIBRARY_PATH: prepend "
    "{prefix}/lib/python3.9/site-packages/nvidia/cudnn/lib:{prefix}/lib:"
    '{prefix}/lib/python3.9/site-packages/tensorrt; XLA_FLAGS=--xla_gpu_cuda_data_dir="{prefix}/lib"',
    # the deactivate.d restore it misses
    "write {prefix}/etc/conda/deactivate.d/merlin-doctor.sh: restores LD_LIBRARY_PATH, XLA_FLAGS",
    # mkdir -p $CONDA_PREFIX/lib/nvvm/libdevice && cp $CONDA_PREFIX/lib/libdevice.10.bc ...
    "mkdir -p {prefix}/lib/nvvm/libdevice && cp {prefix}/lib/libdevice.10.bc "
    "{prefix}/lib/nvvm/libdevice/libdevice.10.bc",
]


def _bare_env(home: Path) -> Dict[str, str]:
    """A user with no conda at all: no CONDA_*/MAMBA_* variables, nothing on PATH but the system."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA", "MAMBA", "XDG_"))}
    env.update(HOME=str(home), PATH="/usr/bin:/bin")
    return env


def bare_doctor(home: Path, *args: str, path: Optional[str] = None) -> subprocess.CompletedProcess:
    """The real CLI with exactly `_bare_env(home)` (conftest's `doctor` adds this process's environment)."""
    env = dict(_bare_env(home), **({"PATH": path} if path else {}))
    return subprocess.run(
        [sys.executable, "-m", "merlin_doctor", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        cwd=str(REPO),
        timeout=120,
    )


def test_setup_env_dry_run_prints_every_article_step_and_changes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(
        [sys.executable, SETUP_ENV, "--dry-run"],
        capture_output=True,
        text=True,
        env=_bare_env(home),
        cwd=str(REPO),
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    prefix = home / ".conda" / "envs" / "merlin"
    assert f"merlin-doctor setup: recipe tf210-cuda112 -> {prefix}" in done.stdout
    for action in ARTICLE_STEPS:
        assert action.format(prefix=prefix) in done.stdout, action
    assert "Dry run: nothing was changed." in done.stdout
    assert list(home.iterdir()) == [], "a dry run creates nothing: no env, lock, log or rc file"


@pytest.mark.parametrize("name", ["conda", "mamba", "micromamba"])
def test_dry_run_with_a_cli_engine_shows_its_exact_command_line(name: str, tmp_path: Path) -> None:
    prefix = tmp_path / "my envs" / "merlin"
    result = bare_doctor(tmp_path, "setup", "--dry-run", "--engine", name, "--prefix", str(prefix), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    env_step = report["plan"][0]
    assert env_step["id"] == "env" and env_step["actions"] == [
        shlex.join(
            [
                name,
                "create",
                "--yes",
                "--prefix",
                str(prefix),
                "--override-channels",
                "--channel",
                "conda-forge",
                "--channel",
                "nvidia",
                "python=3.9",
                "cudatoolkit=11.2.2",
                "nvidia::cuda-nvcc=11.3.58",
                "pip",
            ]
        )
    ]
    assert any(f"the {name} engine is not usable" in note for note in report["notes"])
    assert [p["id"] for p in report["plan"]] == ["env", "pip", "links", "activation", "copies"]


def test_dry_run_uses_the_engine_found_on_path_and_installs_into_an_existing_env(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "micromamba"
    exe.write_text("#!/bin/sh\necho 'discovery-only stand-in; must never run' >&2\nexit 99\n")
    exe.chmod(0o755)
    prefix = tmp_path / "env"
    (prefix / "conda-meta").mkdir(parents=True)
    result = bare_doctor(
        tmp_path, "setup", "--dry-run", "--prefix", str(prefix), "--only", "env", path=f"{bindir}:/usr/bin:/bin"
    )
    assert result.returncode == 0, result.stderr
    assert f"engine: micromamba ({exe})" in result.stdout
    assert (
        shlex.join(
            [
                str(exe),
                "install",
                "--yes",
                "--prefix",
                str(prefix),
                "--override-channels",
                "--channel",
                "conda-forge",
                "--channel",
                "nvidia",
                "python=3.9",
            ]
        )
        in result.stdout
    )


def test_named_env_needs_a_usable_cli_engine_to_know_where_it_lives(tmp_path: Path) -> None:
    result = bare_doctor(tmp_path, "setup", "--dry-run", "--engine", "conda")
    assert result.returncode == 2
    assert result.stderr.startswith("merlin-doctor: error: cannot tell where conda keeps named envs")
    assert "give --prefix DIR" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "layout, message",
    [
        ({"condabin/conda": "x", "conda-meta/history": ""}, "is a conda installation's base env (it holds condabin/)"),
        ({"notes.txt": "mine"}, "exists and is not a conda env (no conda-meta/); refusing to change it"),
    ],
)
def test_the_base_env_and_foreign_directories_are_refused(tmp_path: Path, layout: dict, message: str) -> None:
    for rel, text in layout.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    before = tree(tmp_path)
    result = bare_doctor(tmp_path, "setup", "--prefix", str(tmp_path), "--yes")
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert tree(tmp_path) == before


def test_without_a_terminal_or_yes_nothing_changes(tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    (prefix / "conda-meta").mkdir(parents=True)
    result = bare_doctor(tmp_path, "setup", "--prefix", str(prefix), "--only", "activation")
    assert result.returncode == 2
    assert "not a terminal and no --yes, so nothing was changed: rerun with --yes" in result.stderr
    assert "write " in result.stdout, "the plan is shown first"
    assert not (prefix / "etc").exists()


def test_fix_outside_an_env_and_unknown_steps_are_usage_errors(tmp_path: Path) -> None:
    outside = bare_doctor(tmp_path, "fix")
    assert outside.returncode == 2 and "not inside an env: activate it first" in outside.stderr
    (tmp_path / "conda-meta").mkdir()
    unknown = bare_doctor(tmp_path, "fix", "--prefix", str(tmp_path), "--only", "bashrc")
    assert unknown.returncode == 2
    assert "unknown step 'bashrc'; the steps are: env, pip, links, activation, copies" in unknown.stderr


def test_setup_env_without_a_terminal_or_yes_refuses_before_bootstrapping(tmp_path: Path) -> None:
    """A bare Python would spend a minute making the private venv only for setup to refuse: it refuses first."""
    home, _ = find_python39()
    env = dict(_bare_env(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"))
    started = time.monotonic()
    refused = subprocess.run(
        [str(home / "bin" / "python3.9"), SETUP_ENV, "--prefix", str(tmp_path / "env")],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        cwd=str(REPO),
        timeout=60,
    )
    assert refused.returncode == 2 and "not a terminal and no --yes" in refused.stderr
    assert time.monotonic() - started < 10 and not (tmp_path / "cache").exists(), "no private venv was made"


def test_a_dry_run_under_setup_env_says_the_real_run_installs_py_rattler() -> None:
    from merlin_doctor.setup.engines import make_engine
    from merlin_doctor.setup.orchestrate import SETUP_ENV_INSTALLS_RATTLER, _engine_note

    rattler, reason = make_engine("rattler"), "rattler: py-rattler is not importable in this Python"
    plain = _engine_note(rattler, reason, creates=True, dry_run=True, environ={})
    assert plain.startswith(reason)
    via_setup_env = _engine_note(rattler, reason, creates=True, dry_run=True, environ={SETUP_ENV_INSTALLS_RATTLER: "1"})
    assert "./setup_env installs it in its private Python when it runs for real" in via_setup_env
    assert _engine_note(rattler, reason, creates=True, dry_run=False, environ={}) is None


def test_the_plan_of_the_cpu_recipe_shows_only_the_steps_it_has(tmp_path: Path) -> None:
    result = bare_doctor(tmp_path, "setup", "--recipe", "cpu", "--dry-run", "--prefix", str(tmp_path / "env"))
    assert result.returncode == 0, result.stderr
    for step in ("links", "activation", "copies"):
        assert f"{step:<11} not needed: recipe cpu has no {step}" in result.stdout
    assert "TensorRT" not in result.stdout and "libdevice" not in result.stdout and "already done" not in result.stdout


def test_setup_env_bootstraps_a_private_python_when_the_deps_are_missing(tmp_path: Path) -> None:
    """A bare Python (pyenv's 3.9: no click, no yaml) makes the venv once, then reuses it."""
    if sys.version_info < (3, 10):
        pytest.skip("slow (pip installs a venv): scripts/test runs it once, in its python3 pass")
    home, _ = find_python39()
    bare = str(home / "bin" / "python3.9")
    env = dict(_bare_env(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"))
    env["PATH"] = os.environ["PATH"]  # pip reaches the package index the machine is configured with
    first = subprocess.run(
        [bare, SETUP_ENV, "--dry-run", "--prefix", str(tmp_path / "env")],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(REPO),
        timeout=600,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    venv = tmp_path / "cache" / "merlin-doctor" / "bootstrap"
    assert "preparing a private Python for merlin-doctor in " + str(venv) in first.stderr
    assert (venv / ".merlin-doctor-stamp").is_file() and "Plan (dry run" in first.stdout
    second = subprocess.run(
        [bare, SETUP_ENV, "--dry-run", "--prefix", str(tmp_path / "env")],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(REPO),
        timeout=120,
    )
    assert second.returncode == 0 and "preparing" not in second.stderr
    assert second.stdout == first.stdout


# --- pieces ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, installed, ok",
    [
        ("python=3.9", {"python": "3.9.18"}, True),
        ("python=3.9", {"python": "3.10.1"}, False),
        ("cudatoolkit=11.2.2", {"cudatoolkit": "11.2.2"}, True),
        ("cudatoolkit=11.2.2", {"cudatoolkit": "11.2.20"}, False),
        ("nvidia::cuda-nvcc=11.3.58", {"cuda-nvcc": "11.3.58"}, True),
        ("cudnn>=8.1,<9", {"cudnn": "8.9.2"}, True),
        ("cudnn 8.1.0 h1234_0", {"cudnn": "8.1.0"}, True),
        ("pip", {"pip": "23.2"}, True),
        ("pip", {}, False),
        ("numpy 1.2|1.3", {"numpy": "1.7"}, True),  # an or-constraint: judged by presence, the engine resolves it
    ],
)
def test_conda_specs_are_judged_like_conda(spec: str, installed: dict, ok: bool) -> None:
    assert spec_satisfied(spec, installed) is ok


def test_xla_flags_are_read_as_xla_reads_them() -> None:
    assert xla_data_dir("--xla_gpu_cuda_data_dir=/env/lib --other") == "/env/lib"
    assert xla_data_dir('--a=1 --xla_gpu_cuda_data_dir="/my envs/m/lib" --b') == "/my envs/m/lib"
    assert xla_data_dir("--xla_gpu_cuda_data_dir='/x y/lib'") == "/x y/lib"
    assert xla_data_dir('--xla_gpu_cuda_data_dir="/a \\"b\\"/lib"') == '/a "b"/lib'
    assert xla_data_dir("--other=1") is None


def test_env_checks_name_the_repair_and_when_it_needs_force() -> None:
    from merlin_doctor.checks import all_checks
    from merlin_doctor.facts import Facts
    from merlin_doctor.options import CheckOptions
    from merlin_doctor.runner import run_checks

    link = {"path": "/my env/x/libnvinfer.so.7", "target": "libnvinfer.so.8", "points_to": None}
    copy = {
        "from": "/my env/lib/libdevice.10.bc",
        "to": "/my env/lib/nvvm/libdevice/libdevice.10.bc",
        "from_sha256": None,
        "to_sha256": None,
    }
    facts = Facts(
        {
            "recipe_files": {
                "prefix": "/my env",
                "links": [dict(link, state="file"), dict(link, state="no-target")],
                "copies": [dict(copy, state="no-source")],
            }
        }
    )
    checks = [c for c in all_checks() if c.area == "env"]
    verdicts = {v.id: v for v in run_checks(checks, facts, load_recipe("tf210-cuda112"), CheckOptions())}
    assert verdicts["env.links"].status.value == "fail" and verdicts["env.links"].step == "links"
    assert verdicts["env.links"].fix == "merlin-doctor fix --only links --force"
    assert verdicts["env.copies"].fix == "merlin-doctor setup --prefix '/my env' --only env"
    settled = Facts(
        {
            "recipe_files": {
                "prefix": "/e",
                "links": [dict(link, state="ok"), dict(link, state="no-target")],
                "copies": [],
            }
        }
    )
    verdicts = {v.id: v for v in run_checks(checks, settled, load_recipe("cpu"), CheckOptions())}
    assert verdicts["env.links"].summary == "1 link(s) in place; 1 not made because their target is not installed"
    assert (verdicts["env.copies"].status.value, verdicts["env.copies"].summary) == (
        "pass",
        "recipe cpu makes no copies",
    )
    outside = Facts({"recipe_files": {"prefix": None, "links": [], "copies": []}})
    assert {v.status.value for v in run_checks(checks, outside, load_recipe("cpu"), CheckOptions())} == {"skip"}
