"""Host checks of the container route (`check --host`), on stand-in hosts and on this machine.

A stand-in host is a directory of fake `docker`, `nvidia-ctk`, `nvidia-container-cli` and
hook executables that print recorded or documented outputs (tests/fixtures/container), and a
root with etc/docker/daemon.json and systemd drop-ins. The real probe runs them as
subprocesses, so parsing, timeouts and judging are all exercised. docker-info-daemon-down.*
was recorded on this machine (docker client 28.2.2, no daemon); the others follow the
documented formats (Docker 24.0.7, NVIDIA Container Toolkit 1.14.3).
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path
from typing import Dict, Optional

import pytest
from conftest import FIXTURES, doctor_json, load_fixture

from merlin_doctor import knowledge, testing
from merlin_doctor.probes.context import ProbeContext
from merlin_doctor.probes.registry import probe_named
from merlin_doctor.probes.scheduler import run_probe
from merlin_doctor.recipe import load_recipe
from merlin_doctor.verdict import Status

RAW = FIXTURES / "container"
RECIPE = load_recipe("merlin-tensorflow-23.02")
FIXES = knowledge.load("container")["fixes"]
PERMISSION_DENIED = (
    "permission denied while trying to connect to the Docker daemon socket at "
    'unix:///var/run/docker.sock: Get "http://%2Fvar%2Frun%2Fdocker.sock/v1.24/info": '
    "dial unix /var/run/docker.sock: connect: permission denied"
)


def _executable(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


class StandInHost:
    """A fake host: bin/ on PATH, root/ as the file system root the probe reads."""

    def __init__(self, base: Path):
        self.bin, self.root = base / "bin", base / "root"
        self.bin.mkdir()
        (self.root / "var/lib/docker").mkdir(parents=True)

    def docker(self, info: Optional[str] = None, rc: int = 0, stderr: str = "", hang: bool = False) -> StandInHost:
        answer = (
            "exec sleep 30"
            if hang
            else ((f"cat {RAW / info}\n" if info else "") + (f"echo '{stderr}' >&2\n" if stderr else "") + f"exit {rc}")
        )
        _executable(
            self.bin / "docker",
            f"""case "$1" in
  --version) echo "Docker version 24.0.7, build afdd53b" ;;
  info) {answer} ;;
  image) echo "Error: No such image: $5" >&2; exit 1 ;;
esac
""",
        )
        return self

    def toolkit(self, cli_ok: bool = True, hook: bool = True, apt_list: bool = True) -> StandInHost:
        _executable(self.bin / "nvidia-ctk", f"cat {RAW / 'nvidia-ctk-version.txt'}\n")
        info = (
            f"cat {RAW / 'nvidia-container-cli-info.txt'}"
            if cli_ok
            else f"cat {RAW / 'nvidia-container-cli-info-no-driver.stderr'} >&2; exit 1"
        )
        _executable(
            self.bin / "nvidia-container-cli",
            f"""case "$1" in
  --version) cat {RAW / "nvidia-container-cli-version.txt"} ;;
  info) {info} ;;
esac
""",
        )
        _executable(self.bin / "nvidia-container-runtime", "exit 0\n")
        if hook:
            _executable(self.bin / "nvidia-container-runtime-hook", "exit 0\n")
        if apt_list:
            self.file("/etc/apt/sources.list.d/nvidia-container-toolkit.list", "deb https://nvidia.github.io/...\n")
        return self

    def file(self, path: str, text: str) -> StandInHost:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return self

    def env(self) -> Dict[str, str]:
        return {"PATH": f"{self.bin}:/usr/bin:/bin", "MERLIN_DOCTOR_SYSROOT": str(self.root)}

    def facts(self, timeout: float = 30.0) -> Dict:
        ctx = ProbeContext(recipe_path=RECIPE.path, timeout=timeout, env=self.env(), root=str(self.root))
        return run_probe(probe_named("container_host"), ctx)


def judge(host_facts: Dict, nvml: Optional[Dict] = None) -> Dict:
    probes = {"container_host": host_facts, "nvml": nvml or load_fixture("gpu-t4-healthy.json")["probes"]["nvml"]}
    return testing.judge(probes, RECIPE, only=["container", "gpu.nvml"])


@pytest.fixture
def host(tmp_path):
    return StandInHost(tmp_path)


def test_healthy_host_passes_and_reads_every_fact(host):
    host.docker("docker-info-healthy.json").toolkit().file(
        "/etc/docker/daemon.json", (RAW / "daemon-ctk.json").read_text()
    )
    facts = host.facts()
    assert facts["docker"]["server_version"] == "24.0.7" and "nvidia" in facts["docker"]["runtimes"]
    assert facts["docker"]["image"] == {"name": RECIPE.image, "present": False, "size_bytes": None}
    assert facts["toolkit"]["nvidia_ctk"]["version"] == "1.14.3" and facts["toolkit"]["cli"]["version"] == "1.14.3"
    assert facts["cli_info"] == {
        "ran": True,
        "ok": True,
        "nvrm_version": "525.85.12",
        "cuda_version": "12.0",
        "devices": 1,
        "error": None,
    }
    verdicts = judge(facts)
    assert {k: v.status for k, v in verdicts.items()} == {
        "gpu.nvml": Status.PASS,
        "container.docker": Status.PASS,
        "container.nvidia-runtime": Status.PASS,
        "container.toolkit": Status.PASS,
        "container.cli-info": Status.PASS,
        "container.driver": Status.PASS,
        "container.disk": Status.PASS,
    }
    assert "NVIDIA Container Toolkit 1.14.3" in verdicts["container.toolkit"].summary
    assert f"docker pull {RECIPE.image}" in verdicts["container.disk"].summary


def test_runtime_not_registered_but_gpus_hook_present_warns(host):
    host.docker("docker-info-no-nvidia-runtime.json").toolkit()
    v = judge(host.facts())["container.nvidia-runtime"]
    assert v.status is Status.WARN and "--runtime=nvidia` fails" in v.summary
    assert v.fix == FIXES["configure_runtime"]


def test_runtime_not_registered_and_no_hook_fails_with_configure(host):
    host.docker("docker-info-no-nvidia-runtime.json").toolkit(hook=False)
    v = judge(host.facts())["container.nvidia-runtime"]
    assert (
        v.status is Status.FAIL
        and v.fix == "sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker"
    )


def test_toolkit_missing_names_the_repository_and_the_install(host):
    host.docker("docker-info-no-nvidia-runtime.json")
    verdicts = judge(host.facts())
    toolkit = verdicts["container.toolkit"]
    assert toolkit.status is Status.FAIL
    assert toolkit.fix.startswith("curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey")
    assert "sudo apt-get install -y nvidia-container-toolkit" in toolkit.fix
    assert toolkit.fix.endswith(FIXES["configure_runtime"])
    assert verdicts["container.nvidia-runtime"].fix == toolkit.fix
    assert verdicts["container.cli-info"].status is Status.SKIP


def test_toolkit_missing_with_repository_already_added_only_installs(host):
    host.docker("docker-info-no-nvidia-runtime.json").file(
        "/etc/apt/sources.list.d/nvidia-container-toolkit.list", "deb x\n"
    )
    v = judge(host.facts())["container.toolkit"]
    assert v.fix == FIXES["install_toolkit"] + " && " + FIXES["configure_runtime"]


def test_daemon_down_says_so_and_judges_daemon_json(host):
    stderr = (RAW / "docker-info-daemon-down.stderr").read_text().strip()
    host.docker("docker-info-daemon-down.json", rc=1, stderr=stderr).toolkit()
    host.file("/etc/docker/daemon.json", (RAW / "daemon-ctk.json").read_text())
    verdicts = judge(host.facts())
    docker = verdicts["container.docker"]
    assert docker.status is Status.FAIL
    assert docker.summary == (
        "the docker client 24.0.7 is installed but the daemon is not running: Cannot connect to "
        "the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
    )
    assert docker.fix == "sudo systemctl start docker"
    assert verdicts["container.nvidia-runtime"].status is Status.PASS
    assert "not running to confirm" in verdicts["container.nvidia-runtime"].summary
    assert verdicts["container.disk"].status is Status.SKIP


def test_articles_override_and_daemon_json_together_keep_dockerd_down(host):
    """The article writes --add-runtime=nvidia in override.conf and runtimes.nvidia in daemon.json."""
    host.docker("docker-info-daemon-down.json", rc=1, stderr="Cannot connect to the Docker daemon").toolkit()
    host.file("/etc/docker/daemon.json", (RAW / "daemon-article.json").read_text())
    host.file("/etc/systemd/system/docker.service.d/override.conf", (RAW / "override-article.conf").read_text())
    facts = host.facts()
    assert facts["dropins"] == [
        {"path": "/etc/systemd/system/docker.service.d/override.conf", "add_runtime": ["nvidia"]}
    ]
    verdicts = judge(facts)
    fix = (
        "sudo rm /etc/systemd/system/docker.service.d/override.conf && sudo systemctl daemon-reload "
        "&& sudo systemctl restart docker"
    )
    assert verdicts["container.docker"].status is Status.FAIL and verdicts["container.docker"].fix == fix
    assert "cannot start" in verdicts["container.docker"].summary
    runtime = verdicts["container.nvidia-runtime"]
    assert runtime.status is Status.FAIL and runtime.fix == fix and "refuse to start" in runtime.summary


def test_articles_daemon_json_alone_works_but_its_default_runtime_is_ignored(host):
    host.docker("docker-info-healthy.json").toolkit().file(
        "/etc/docker/daemon.json", (RAW / "daemon-article.json").read_text()
    )
    v = judge(host.facts())["container.nvidia-runtime"]
    assert v.status is Status.PASS and "dockerd ignores it" in v.summary


def test_permission_denied_names_the_docker_group(host):
    host.docker("docker-info-daemon-down.json", rc=1, stderr=PERMISSION_DENIED).toolkit()
    v = judge(host.facts())["container.docker"]
    assert v.status is Status.FAIL and "refuses this user" in v.summary
    assert v.fix == "sudo usermod -aG docker $USER && newgrp docker"


def test_broken_daemon_json(host):
    host.docker("docker-info-daemon-down.json", rc=1, stderr="Cannot connect to the Docker daemon").toolkit()
    host.file("/etc/docker/daemon.json", '{"runtimes": {"nvidia": {"path": "nvidia-container-runtime",}}}')
    verdicts = judge(host.facts())
    assert verdicts["container.docker"].fix == FIXES["fix_daemon_json"]
    assert "not valid JSON" in verdicts["container.nvidia-runtime"].summary


def test_hanging_daemon_is_cut_off(host):
    host.docker(hang=True).toolkit()
    facts = host.facts(timeout=1)
    assert facts["docker"]["timed_out"] is True
    v = judge(facts)["container.docker"]
    assert v.status is Status.FAIL and "does not answer" in v.summary and v.fix == "sudo systemctl restart docker"


def test_cli_info_without_driver(host):
    host.docker("docker-info-healthy.json").toolkit(cli_ok=False)
    v = judge(host.facts())["container.cli-info"]
    assert v.status is Status.FAIL and "driver not loaded" in v.summary and v.fix == FIXES["install_driver"]


def test_docker_not_installed(host):
    v = judge(host.facts())["container.docker"]
    assert v.status is Status.FAIL and v.summary == "docker is not installed" and v.fix == FIXES["install_docker"]


@pytest.mark.parametrize(
    "driver, status, words",
    [
        ("525.85.12", Status.PASS, "supports CUDA 11.8"),
        ("470.82.01", Status.WARN, "forward-compatibility package (branch 470 >= 470.57)"),
        ("450.51.06", Status.WARN, "forward-compatibility package (branch 450 >= 450.51)"),
        ("495.29.05", Status.WARN, "minor-version compatibility"),
        ("440.33.01", Status.FAIL, "too old for CUDA 11.8"),
    ],
)
def test_driver_against_the_images_cuda(driver, status, words):
    nvml = dict(load_fixture("gpu-t4-healthy.json")["probes"]["nvml"], driver_version=driver)
    v = judge({"docker": {}, "toolkit": {}}, nvml)["container.driver"]
    assert v.status is status and words in v.summary, v.summary


def test_disk_for_the_image():
    docker = {
        "installed": True,
        "reachable": True,
        "server_version": "24.0.7",
        "root_dir": "/var/lib/docker",
        "root_dir_free_bytes": 10 * 1000**3,
        "image": {"name": RECIPE.image, "present": False},
    }
    v = judge({"docker": docker, "toolkit": {}})["container.disk"]
    assert v.status is Status.FAIL and "needs about 16 GB" in v.summary and v.evidence["needed_bytes"] == 16225000000
    docker["image"] = {"name": RECIPE.image, "present": True, "size_bytes": 14_900_000_000}
    v = judge({"docker": docker, "toolkit": {}})["container.disk"]
    assert v.status is Status.PASS and "already pulled (14.9 GB)" in v.summary


def test_cli_host_mode_on_a_stand_in_host(host):
    host.docker("docker-info-daemon-down.json", rc=1, stderr="Cannot connect to the Docker daemon").toolkit()
    host.file("/etc/docker/daemon.json", (RAW / "daemon-article.json").read_text())
    host.file("/etc/systemd/system/docker.service.d/override.conf", (RAW / "override-article.conf").read_text())
    data = doctor_json("check", "--host", env=host.env())
    verdicts = {v["id"]: v for v in data["verdicts"]}
    assert set(verdicts) == {
        "gpu.nvml",
        "container.docker",
        "container.nvidia-runtime",
        "container.toolkit",
        "container.cli-info",
        "container.driver",
        "container.disk",
    }
    assert data["recipe"] == "merlin-tensorflow-23.02"
    assert verdicts["container.nvidia-runtime"]["status"] == "fail"
    assert verdicts["container.toolkit"]["status"] == "pass"


def test_this_machine_says_exactly_what_it_has():
    """The real docker client here, with or without a daemon: the verdict says which."""
    data = doctor_json("check", "--host", "--only", "container.docker")
    v = data["verdicts"][0]
    docker = shutil.which("docker")
    if docker is None:
        assert v["summary"] == "docker is not installed"
        return
    version = subprocess.run([docker, "--version"], capture_output=True, text=True).stdout.split()[2].rstrip(",")
    server = subprocess.run([docker, "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True)
    if server.returncode == 0 and server.stdout.strip():
        assert v["status"] == "pass" and f"Docker {server.stdout.strip()} answers" in v["summary"]
    else:
        assert v["status"] == "fail"
        assert v["summary"].startswith(f"the docker client {version} is installed but the daemon ")
        assert "Cannot connect to the Docker daemon" in v["summary"] or "permission denied" in v["summary"]


def test_host_flag_needs_a_container_recipe_and_host_checks_need_the_flag():
    from conftest import doctor

    result = doctor("check", "--host", "--recipe", "cpu")
    assert result.returncode == 2 and "is a conda recipe (try --recipe merlin-tensorflow-23.02)" in result.stderr
    result = doctor("check", "--only", "container")
    assert result.returncode == 2 and "add --host" in result.stderr
    result = doctor("check", "--host", "--only", "python")
    assert result.returncode == 2 and "drop --host" in result.stderr


def test_in_env_runs_leave_the_host_checks_out():
    data = doctor_json("check", "--fast", "--only", "host")
    assert not [v for v in data["verdicts"] if v["id"].startswith("container.")]
    assert "container_host" not in data["facts"]["probes"]
