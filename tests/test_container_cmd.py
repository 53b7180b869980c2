"""`merlin-doctor container-cmd`: the docker run line, its GPU flag, and the CLI around it."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from conftest import doctor

import merlin_doctor
from merlin_doctor.container import DOCTOR_MOUNT, docker_run
from merlin_doctor.recipe import load_recipe

RECIPE = load_recipe("merlin-tensorflow-23.02")
PACKAGE = str(Path(merlin_doctor.__file__).parent)
READY = {
    "docker": {"reachable": True, "server_version": "24.0.7", "runtimes": ["nvidia", "runc"]},
    "toolkit": {"hook": "/usr/bin/nvidia-container-runtime-hook"},
}


def test_ready_host_gets_gpus_all_and_the_whole_route():
    line = docker_run(RECIPE, READY, "/home/ana/work", PACKAGE, 8888)
    argv = line.argv
    assert argv[:6] == ["docker", "run", "--rm", "-it", "--gpus", "all"]
    for flag in (
        ["--ipc=host"],
        ["--cap-add", "SYS_NICE"],
        ["-p", "8888:8888"],
        ["-v", "/home/ana/work:/workspace"],
        ["-v", f"{PACKAGE}:{DOCTOR_MOUNT}/merlin_doctor:ro"],
        ["--ulimit", "memlock=-1"],
    ):
        assert any(argv[i : i + len(flag)] == flag for i in range(len(argv))), flag
    image_at = argv.index(RECIPE.image)
    assert argv[image_at + 1 : image_at + 3] == ["bash", "-c"]
    inside = argv[image_at + 3]
    assert inside.index("python -m merlin_doctor check --recipe merlin-tensorflow-23.02") < inside.index(
        "exec jupyter notebook --ip 0.0.0.0 --port 8888"
    )
    assert shlex.split(line.command(multiline=False)) == argv


def test_old_docker_with_a_registered_runtime_gets_runtime_nvidia():
    old = {
        "docker": {"reachable": True, "server_version": "18.09.7", "runtimes": ["nvidia", "runc"]},
        "toolkit": {"hook": "/usr/bin/nvidia-container-runtime-hook"},
    }
    line = docker_run(RECIPE, old, "/w", PACKAGE)
    assert line.gpu_flag == ["--runtime=nvidia", "-e", "NVIDIA_VISIBLE_DEVICES=all"]
    assert "--gpus" not in line.argv


def test_daemon_down_but_runtime_in_daemon_json_uses_it():
    down = {"docker": {"reachable": False}, "toolkit": {}, "daemon_json": {"runtimes": {"nvidia": {}}}}
    assert docker_run(RECIPE, down, "/w", PACKAGE).gpu_flag[0] == "--runtime=nvidia"


def test_unready_host_assumes_gpus_and_says_to_check_the_host_first():
    line = docker_run(RECIPE, {"docker": {"installed": True, "reachable": False}, "toolkit": {}}, "/w", PACKAGE)
    assert line.gpu_flag == ["--gpus", "all"] and "merlin-doctor check --host" in line.reason


def test_shell_mode_publishes_no_port_and_ends_in_bash():
    line = docker_run(RECIPE, READY, "/w", PACKAGE, shell=True)
    assert "-p" not in line.argv and line.argv[-1].endswith("; exec bash")


def test_cli_prints_a_command_bash_accepts_and_notes_on_stderr(tmp_path):
    work = tmp_path / "my work"
    work.mkdir()
    result = doctor("container-cmd", "--workdir", str(work), "--jupyter-port", "8890")
    assert result.returncode == 0, result.stderr
    argv = shlex.split(result.stdout.replace("\\\n", " "))
    assert argv[0:2] == ["docker", "run"] and f"{work}:/workspace" in argv and "8890:8890" in argv
    assert subprocess.run(["bash", "-n"], input=result.stdout, text=True).returncode == 0
    assert "# GPU flag --gpus all" in result.stderr and "# your work:" in result.stderr
    quiet = doctor("container-cmd", "-q", "--workdir", str(work), "--jupyter-port", "8890")
    assert quiet.stdout == result.stdout and quiet.stderr == ""


def test_cli_json_and_bad_input(tmp_path):
    data = json.loads(doctor("container-cmd", "--json", "--workdir", str(tmp_path)).stdout)
    assert data["recipe"] == "merlin-tensorflow-23.02" and shlex.split(data["command"]) == data["argv"]
    result = doctor("container-cmd", "--recipe", "cpu")
    assert result.returncode == 2 and "is a conda recipe" in result.stderr and "Traceback" not in result.stderr
    result = doctor("container-cmd", "--jupyter-port", "99999")
    assert result.returncode == 2
    result = doctor("container-cmd", "--workdir", str(tmp_path / "missing"))
    assert result.returncode == 2
