"""Container-host checks: what a machine needs to run a merlin-tensorflow image with its GPUs.

They judge the host (`merlin-doctor check --host`), never an env: docker and its daemon,
the NVIDIA runtime and toolkit, the driver against the image's CUDA, and the disk for the
image. Each fix is the command from the article's route (corrected) that repairs it.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from packaging.version import InvalidVersion, Version

from merlin_doctor import knowledge
from merlin_doctor.checks import FactsView, check
from merlin_doctor.checks.gpu import judge_driver
from merlin_doctor.container import gpus_flag_supported
from merlin_doctor.recipe import Recipe
from merlin_doctor.verdict import Finding, Status, failed, passed, skipped, warned

GB = 1000**3  # image sizes are quoted in decimal GB, as NGC and `docker images` print them


def _table() -> Dict[str, Any]:
    return knowledge.load("container")


def _fix(name: str, **fill: str) -> str:
    return _table()["fixes"][name].format(**fill)


def _runtime_clash(host: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """A runtime defined both by a drop-in's --add-runtime and in daemon.json: dockerd will not start."""
    in_file = set((host.get("daemon_json") or {}).get("runtimes") or {})
    for dropin in host.get("dropins") or []:
        both = sorted(in_file & set(dropin["add_runtime"]))
        if both:
            return {"dropin": dropin["path"], "runtimes": both}
    return None


def _toolkit_install(host: Dict[str, Any]) -> str:
    steps = [] if host["toolkit"].get("apt_list") else [_fix("add_toolkit_repo")]
    return " && ".join(steps + [_fix("install_toolkit"), _fix("configure_runtime")])


@check("container.docker", probes=["container_host"])
def docker_answers(facts: FactsView, recipe: Recipe) -> Finding:
    """The docker client is installed and its daemon answers `docker info`."""
    host = facts["container_host"]
    docker = host.get("docker") or {}
    if not docker.get("installed"):
        return failed("docker is not installed", fix=_fix("install_docker"))
    evidence = {
        "client_version": docker.get("client_version"),
        "path": docker.get("path"),
        "DOCKER_HOST": docker.get("host"),
    }
    if docker.get("reachable"):
        return passed(
            f"Docker {docker.get('server_version')} answers (client {docker.get('client_version')}), "
            f"data root {docker.get('root_dir')}",
            evidence={"server_version": docker.get("server_version"), **evidence},
        )
    error = docker.get("error") or ""
    evidence["error"] = error
    client = " ".join(w for w in ("the docker client", docker.get("client_version")) if w)
    what = f"{client} is installed but the daemon "
    if docker.get("timed_out"):
        return failed(what + f"does not answer: {error}", fix=_fix("restart_docker"), evidence=evidence)
    if _table()["docker_errors"]["permission_denied"] in error.lower():
        return failed(what + f"refuses this user: {error}", fix=_fix("docker_group"), evidence=evidence)
    clash = _runtime_clash(host)
    if clash:
        return failed(
            what + f"is not running, and cannot start: runtime {', '.join(clash['runtimes'])} is defined "
            f"both by --add-runtime in {clash['dropin']} and in daemon.json",
            fix=_fix("remove_runtime_flag", dropin=clash["dropin"]),
            evidence={"clash": clash, **evidence},
        )
    daemon_json = host.get("daemon_json") or {}
    if daemon_json.get("error"):
        return failed(
            what + f"is not running, and {daemon_json.get('path')} is broken: {daemon_json['error']}",
            fix=_fix("fix_daemon_json"),
            evidence=evidence,
        )
    return failed(what + f"is not running: {error}", fix=_fix("start_docker"), evidence=evidence)


@check("container.nvidia-runtime", probes=["container_host"])
def nvidia_runtime(facts: FactsView, recipe: Recipe) -> Finding:
    """Docker can hand the GPUs to a container: the nvidia runtime is registered (or --gpus has its hook)."""
    host = facts["container_host"]
    docker, daemon_json = host.get("docker") or {}, host.get("daemon_json") or {}
    clash = _runtime_clash(host)
    evidence = {
        "daemon_json": daemon_json,
        "dropins": host.get("dropins"),
        "runtimes": docker.get("runtimes"),
        "hook": host["toolkit"].get("hook"),
    }
    if clash:
        return failed(
            f"dockerd will refuse to start: runtime {', '.join(clash['runtimes'])} is defined both by "
            f"--add-runtime in {clash['dropin']} and in {daemon_json.get('path')} (the article sets both)",
            fix=_fix("remove_runtime_flag", dropin=clash["dropin"]),
            evidence=evidence,
        )
    if daemon_json.get("error"):
        return failed(
            f"{daemon_json.get('path')} is {daemon_json['error']}: dockerd will not start with it",
            fix=_fix("fix_daemon_json"),
            evidence=evidence,
        )
    nested = "default-runtime" in (daemon_json.get("runtimes") or {}).get("nvidia", {})
    note = (
        (
            ' (its "default-runtime" sits inside runtimes.nvidia, where dockerd ignores it: '
            "nvidia is not the default runtime)"
        )
        if nested
        else ""
    )
    if docker.get("reachable"):
        if "nvidia" in (docker.get("runtimes") or []):
            return passed(
                f"the nvidia runtime is registered (default: {docker.get('default_runtime')}){note}", evidence=evidence
            )
        if host["toolkit"].get("hook") and gpus_flag_supported(docker):
            return warned(
                "the nvidia runtime is not registered: `docker run --gpus all` works through the "
                "toolkit's hook, but the article's `--runtime=nvidia` fails",
                fix=_fix("configure_runtime"),
                evidence=evidence,
            )
        fix = _fix("configure_runtime") if host["toolkit"].get("nvidia_ctk", {}).get("path") else _toolkit_install(host)
        return failed(
            f"docker cannot give containers a GPU: no nvidia runtime (runtimes: "
            f"{', '.join(docker.get('runtimes') or []) or 'none'}) and no --gpus hook",
            fix=fix,
            evidence=evidence,
        )
    if "nvidia" in (daemon_json.get("runtimes") or {}):
        return passed(
            f"{daemon_json.get('path')} registers the nvidia runtime; the daemon is not running to confirm it{note}",
            evidence=evidence,
        )
    fix = _fix("configure_runtime") if host["toolkit"].get("nvidia_ctk", {}).get("path") else _toolkit_install(host)
    return failed(
        f"the nvidia runtime is not registered ({daemon_json.get('path')} "
        f"{'names no nvidia runtime' if daemon_json.get('exists') else 'does not exist'})",
        fix=fix,
        evidence=evidence,
    )


@check("container.toolkit", probes=["container_host"])
def toolkit_installed(facts: FactsView, recipe: Recipe) -> Finding:
    """The NVIDIA Container Toolkit is installed (`nvidia-ctk --version` answers)."""
    toolkit = facts["container_host"]["toolkit"]
    ctk = toolkit.get("nvidia_ctk") or {}
    evidence = {
        "nvidia_ctk": ctk,
        "nvidia_container_cli": toolkit.get("cli"),
        "nvidia_container_runtime": toolkit.get("runtime"),
        "hook": toolkit.get("hook"),
        "apt_repository": toolkit.get("apt_list"),
    }
    if ctk.get("path") and ctk.get("version"):
        return passed(f"NVIDIA Container Toolkit {ctk['version']} ({ctk['path']})", evidence=evidence)
    if ctk.get("path"):
        return warned(
            f"{ctk['path']} did not report its version: {ctk.get('error') or 'no version in its output'}",
            fix=_fix("install_toolkit"),
            evidence=evidence,
        )
    if toolkit.get("runtime") or toolkit.get("hook"):
        return warned(
            "an old NVIDIA Container Toolkit without nvidia-ctk: `nvidia-ctk runtime configure` is unavailable",
            fix=_fix("install_toolkit"),
            evidence=evidence,
        )
    return failed(
        "the NVIDIA Container Toolkit is not installed (no nvidia-ctk, nvidia-container-runtime or hook)",
        fix=_toolkit_install(facts["container_host"]),
        evidence=evidence,
    )


@check("container.cli-info", probes=["container_host"], needs=["container.toolkit"], gpu=True)
def cli_info(facts: FactsView, recipe: Recipe) -> Finding:
    """`nvidia-container-cli info` reaches the driver: what every GPU container is started through."""
    info = facts["container_host"].get("cli_info") or {}
    if not info.get("ran"):
        return failed(
            "nvidia-container-cli is not installed (it comes with the toolkit's libnvidia-container-tools)",
            fix=_fix("install_toolkit"),
        )
    if info.get("ok"):
        return passed(
            f"nvidia-container-cli sees {info.get('devices')} GPU(s), driver {info.get('nvrm_version')}, "
            f"CUDA {info.get('cuda_version')}",
            evidence=info,
        )
    error = info.get("error") or "it failed"
    fix = (
        _fix("install_driver")
        if "driver" in error.lower()
        else "sudo nvidia-container-cli -k -d /dev/tty info  # shows why it cannot reach the driver"
    )
    return failed(f"nvidia-container-cli cannot reach the driver: {error}", fix=fix, evidence=info)


def _forward_compat_minimum(driver: str, cuda: Optional[str]) -> Optional[str]:
    """The minimum of the driver's branch for which the image's forward-compat package works, if any."""
    branches = _table()["forward_compat"].get(str(cuda)) or {}
    minimum = branches.get(driver.split(".", 1)[0])
    try:
        return minimum if minimum and Version(driver) >= Version(minimum) else None
    except InvalidVersion:
        return None


@check("container.driver", probes=["nvml"], needs=["gpu.nvml"], gpu=True)
def driver_for_image(facts: FactsView, recipe: Recipe) -> Finding:
    """The host driver runs the image's CUDA (natively, by forward compatibility, or minor-version compatibility)."""
    cuda = recipe.expect.cuda_runtime
    finding = judge_driver(facts["nvml"], str(cuda) if cuda else None, f"the CUDA of {recipe.image}")
    if finding.status is Status.PASS:
        return finding
    driver = facts["nvml"].get("driver_version") or ""
    minimum = _forward_compat_minimum(driver, cuda)
    if not minimum:
        return finding
    return warned(
        f"driver {driver} is older than CUDA {cuda} wants: the image still runs it in full on a data-center "
        f"GPU (T4, V100, A100, ...) through its CUDA forward-compatibility package (branch "
        f"{driver.split('.')[0]} >= {minimum}); on a GeForce/RTX card only minor-version compatibility applies",
        fix=finding.fix,
        evidence={"forward_compat_minimum": minimum, **finding.evidence},
    )


@check("container.disk", probes=["container_host"], needs=["container.docker"])
def disk_for_image(facts: FactsView, recipe: Recipe) -> Finding:
    """Docker's data root has room to pull the image (its compressed size times the unpack factor)."""
    docker = facts["container_host"].get("docker") or {}
    image = docker.get("image") or {}
    if image.get("present"):
        size = image.get("size_bytes") or 0
        return passed(f"{recipe.image} is already pulled ({size / GB:.1f} GB)", evidence=image)
    if docker.get("remote"):
        return skipped(f"the daemon is remote ({docker.get('host')}): its disk cannot be judged from here")
    if not recipe.image_compressed_bytes:
        return skipped(f"recipe {recipe.name} does not state the image's size")
    free = docker.get("root_dir_free_bytes")
    if free is None:
        return skipped(f"cannot read the free space of {docker.get('root_dir')}")
    need = int(recipe.image_compressed_bytes * float(_table()["disk_factor"]))
    evidence = {
        "root_dir": docker.get("root_dir"),
        "free_bytes": free,
        "needed_bytes": need,
        "image_compressed_bytes": recipe.image_compressed_bytes,
    }
    if free < need:
        return failed(
            f"only {free / GB:.1f} GB free on {docker.get('root_dir')}: pulling {recipe.image} "
            f"({recipe.image_compressed_bytes / GB:.2f} GB compressed) needs about {need / GB:.0f} GB",
            fix=_fix("free_docker_disk"),
            evidence=evidence,
        )
    return passed(
        f"{free / GB:.0f} GB free on {docker.get('root_dir')} (pulling needs about {need / GB:.0f} GB): "
        f"docker pull {recipe.image}",
        evidence=evidence,
    )
