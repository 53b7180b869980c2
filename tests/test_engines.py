"""Engines: the real rattler engine on an offline channel, and the CLI engines' command lines.

conda, mamba and micromamba cannot be installed here, so their exact command lines are
asserted; fake executables on PATH only test which engine is picked, never results.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
from pathlib import Path

import pytest
from conda_channel import build_channel, find_python39, require_rattler

from merlin_doctor.setup.engines import (
    CliEngine,
    EngineError,
    EngineUnavailable,
    RattlerEngine,
    installed_packages,
    prefix_for_name,
    select_engine,
)

pytestmark = pytest.mark.per_interpreter  # the doctor must behave the same on each Python it supports

REPO = Path(__file__).resolve().parent.parent
SPECS = ["python=3.9", "cudatoolkit=11.2.2", "cudnn=8.1.0", "cuda-nvcc=11.3.58"]


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> str:
    require_rattler()
    return build_channel(tmp_path_factory.mktemp("chan") / "local channel")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> RattlerEngine:
    return RattlerEngine(cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def env(channel: str, engine: RattlerEngine, tmp_path_factory: pytest.TempPathFactory):
    """One env made by the real engine, in a path with spaces; returns (prefix, progress lines)."""
    prefix = tmp_path_factory.mktemp("envs") / "my envs" / "merlin env"
    lines: list[str] = []
    engine.create(prefix, [channel], SPECS, lines.append)
    return prefix, lines


def test_rattler_env_has_the_packages_in_conda_meta(env, engine: RattlerEngine) -> None:
    prefix, lines = env
    got = engine.installed(prefix)
    python_version = find_python39()[1]
    assert {k: got.get(k) for k in ("python", "cudatoolkit", "cudnn", "cuda-nvcc")} == {
        "python": python_version,
        "cudatoolkit": "11.2.2",
        "cudnn": "8.1.0",
        "cuda-nvcc": "11.3.58",
    }
    assert "pip" in got, "python brings pip, as with conda's add_pip_as_python_dependency"
    assert any(line == "linking cudatoolkit" for line in lines), lines
    assert lines[-1].startswith("environment ready at")


def test_rattler_env_files_work(env) -> None:
    prefix, _ = env
    cudart = ctypes.CDLL(str(prefix / "lib" / "libcudart.so.11.0"))
    version = ctypes.c_int()
    assert cudart.cudaRuntimeGetVersion(ctypes.byref(version)) == 0 and version.value == 11020
    assert (prefix / "lib" / "libcudnn.so.8").is_file()
    assert (prefix / "lib" / "libdevice.10.bc").read_bytes().startswith(b"BC\xc0\xde")
    ptxas = subprocess.run([str(prefix / "bin" / "ptxas"), "--version"], capture_output=True, text=True)
    assert ptxas.returncode == 0 and "release 11.3, V11.3.58" in ptxas.stdout


def test_rattler_env_python_has_its_own_pip(env) -> None:
    prefix, _ = env
    done = subprocess.run([str(prefix / "bin" / "python"), "-m", "pip", "--version"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert str(prefix / "lib" / "python3.9" / "site-packages") in done.stdout


def test_rattler_rerun_on_converged_env_changes_nothing(env, channel: str, engine: RattlerEngine) -> None:
    prefix, _ = env
    before = {p: p.stat().st_mtime_ns for p in (prefix / "conda-meta").glob("*.json")}
    lines: list[str] = []
    engine.create(prefix, [channel], SPECS, lines.append)
    assert {p: p.stat().st_mtime_ns for p in (prefix / "conda-meta").glob("*.json")} == before
    assert not any(line.startswith("linking") for line in lines), lines


def test_rattler_never_removes_packages_outside_the_specs(channel: str, engine: RattlerEngine, tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    engine.create(prefix, [channel], SPECS, None)
    engine.create(prefix, [channel], ["cuda-nvcc=11.3.58"], None)
    assert {"python", "pip", "cudatoolkit", "cudnn", "cuda-nvcc"} <= set(engine.installed(prefix))
    assert (prefix / "lib" / "libcudnn.so.8").is_file()


def test_rattler_repairs_an_env_left_half_done(channel: str, engine: RattlerEngine, tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    engine.create(prefix, [channel], SPECS, None)
    (record,) = (prefix / "conda-meta").glob("cudnn-*.json")
    record.write_text("{")  # torn by a kill mid-write
    (prefix / "lib" / "libcudnn.so.8").unlink()
    assert "cudnn" not in installed_packages(prefix)
    engine.create(prefix, [channel], SPECS, None)
    assert engine.installed(prefix)["cudnn"] == "8.1.0"
    assert (prefix / "lib" / "libcudnn.so.8").is_file()


def test_channel_takes_replacement_libraries(engine: RattlerEngine, tmp_path: Path) -> None:
    """Passed-in files replace the defaults (libcudnn* into cudnn) and never hit a stale cache."""
    source = tmp_path / "libnvinfer.so.8"
    source.write_bytes(b"stand-in nvinfer")
    url = build_channel(tmp_path / "chan", libs={"lib/libcudnn.so.8": b"stand-in cudnn", "lib/libnvinfer.so.8": source})
    prefix = tmp_path / "env"
    engine.create(prefix, [url], ["cudnn=8.1.0"], None)  # cudatoolkit comes as cudnn's dependency
    assert (prefix / "lib" / "libcudnn.so.8").read_bytes() == b"stand-in cudnn"
    assert (prefix / "lib" / "libnvinfer.so.8").read_bytes() == b"stand-in nvinfer"
    assert (prefix / "lib" / "libcudart.so.11.0").is_file()


def test_rattler_unsolvable_spec_is_a_clear_error(channel: str, engine: RattlerEngine, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="could not solve"):
        engine.create(tmp_path / "env", [channel], ["cudatoolkit=99"], None)


@pytest.mark.parametrize("engine_obj", [RattlerEngine(), CliEngine("conda", exe="conda")], ids=["rattler", "conda"])
def test_engines_refuse_a_directory_that_is_not_an_env(engine_obj, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(EngineError, match="not a conda environment"):
        engine_obj.create(tmp_path, ["conda-forge"], ["python=3.9"], None)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("name", ["conda", "mamba", "micromamba"])
def test_cli_create_command_for_a_new_prefix(name: str, tmp_path: Path) -> None:
    prefix = tmp_path / "my envs" / "merlin"
    cmd = CliEngine(name, exe=name).create_command(prefix, ["conda-forge", "nvidia"], SPECS)
    assert cmd == [
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
        "cudnn=8.1.0",
        "cuda-nvcc=11.3.58",
    ]


@pytest.mark.parametrize("name", ["conda", "mamba", "micromamba"])
def test_cli_installs_into_an_existing_env_instead_of_recreating_it(name: str, tmp_path: Path) -> None:
    (tmp_path / "conda-meta").mkdir()
    cmd = CliEngine(name, exe=f"/opt/{name}/bin/{name}").create_command(tmp_path, ["conda-forge"], ["cudnn=8.1.0"])
    assert cmd == [
        f"/opt/{name}/bin/{name}",
        "install",
        "--yes",
        "--prefix",
        str(tmp_path),
        "--override-channels",
        "--channel",
        "conda-forge",
        "cudnn=8.1.0",
    ]


def test_cli_without_channels_keeps_the_users_channels(tmp_path: Path) -> None:
    cmd = CliEngine("micromamba", exe="micromamba").create_command(tmp_path / "e", [], ["pip"])
    assert cmd == ["micromamba", "create", "--yes", "--prefix", str(tmp_path / "e"), "pip"]


def test_cli_engine_that_cannot_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="could not run conda"):
        CliEngine("conda", exe=str(tmp_path / "missing-conda")).create(tmp_path / "e", [], ["pip"])


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty PATH directory and no conda/mamba hints in the environment."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))
    for var in ("CONDA_EXE", "MAMBA_EXE"):
        monkeypatch.delenv(var, raising=False)
    return bindir


def _put_on_path(bindir: Path, name: str) -> Path:
    exe = bindir / name
    exe.write_text("#!/bin/sh\necho 'discovery-only stand-in; must never run' >&2\nexit 99\n")
    exe.chmod(0o755)
    return exe


def test_auto_prefers_micromamba_then_mamba_then_conda(bare_path: Path) -> None:
    _put_on_path(bare_path, "conda")
    assert select_engine().name == "conda"
    _put_on_path(bare_path, "mamba")
    assert select_engine().name == "mamba"
    exe = _put_on_path(bare_path, "micromamba")
    chosen = select_engine("auto")
    assert chosen.name == "micromamba" and chosen.exe == str(exe)


def test_auto_falls_back_to_rattler(bare_path: Path) -> None:
    require_rattler()
    assert select_engine().name == "rattler"


def test_conda_found_through_conda_exe_hint(bare_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "miniconda3" / "condabin"
    elsewhere.mkdir(parents=True)
    monkeypatch.setenv("CONDA_EXE", str(_put_on_path(elsewhere, "conda")))
    assert select_engine("conda").exe == str(elsewhere / "conda")


def test_missing_engine_says_what_was_looked_for(bare_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match=r"mamba engine is not usable.*\n.*mamba: not on PATH and \$MAMBA_EXE"):
        select_engine("mamba")
    with pytest.raises(ValueError, match="unknown engine 'pixi'"):
        select_engine("pixi")


def test_engines_import_on_python39_and_rattler_says_how_to_get_it() -> None:
    """py-rattler has no Python 3.9 wheel: the engine must say so, not crash the import."""
    home, _ = find_python39()
    code = (
        "from merlin_doctor.setup.engines import select_engine, EngineUnavailable\n"
        "try:\n    select_engine('rattler')\nexcept EngineUnavailable as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [str(home / "bin" / "python3.9"), "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'py-rattler>=0.28,<0.29'" in done.stdout and "Python >= 3.10" in done.stdout


def test_rattler_envs_dir_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CONDA_ENVS_PATH", "CONDA_ENVS_DIRS", "CONDA_EXE", "MAMBA_ROOT_PREFIX"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    engine = RattlerEngine()
    assert engine.envs_dir() == tmp_path / "home" / ".conda" / "envs"
    monkeypatch.setenv("MAMBA_ROOT_PREFIX", str(tmp_path / "micromamba"))
    assert engine.envs_dir() == tmp_path / "micromamba" / "envs"
    monkeypatch.setenv("CONDA_EXE", str(tmp_path / "miniconda3" / "bin" / "conda"))
    assert engine.envs_dir() == tmp_path / "miniconda3" / "envs"
    monkeypatch.setenv("CONDA_ENVS_PATH", os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]))
    assert prefix_for_name(engine, "merlin") == tmp_path / "a" / "merlin"


@pytest.mark.parametrize("bad", ["", "base", "a/b", "my env", "x:y"])
def test_prefix_for_name_rejects_names_conda_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid environment name"):
        prefix_for_name(RattlerEngine(), bad)


def test_installed_packages_skips_unreadable_records(tmp_path: Path) -> None:
    meta = tmp_path / "conda-meta"
    meta.mkdir()
    (meta / "a-1-0.json").write_text(json.dumps({"name": "a", "version": "1"}))
    (meta / "b-2-0.json").write_text('{"name": "b", "vers')
    assert installed_packages(tmp_path) == {"a": "1"}
