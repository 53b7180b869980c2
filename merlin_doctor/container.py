"""The `docker run` line for a container recipe, chosen from the host's facts (pure: no I/O).

The merlin-tensorflow images are offline-friendly but hold Python 3.8, which the
merlin-doctor package (Python >= 3.9 on PyPI) cannot be pip-installed into, and `pip install`
needs a network the container may not have. So the line mounts this doctor's own package
read-only into the image and runs it from there: no download, nothing written to the image.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

from packaging.version import InvalidVersion, Version

from merlin_doctor import knowledge
from merlin_doctor.recipe import Recipe

DOCTOR_MOUNT = "/opt/merlin-doctor"  # parent of the mounted package: it goes first on PYTHONPATH
WORK_MOUNT = "/workspace"


def gpus_flag_supported(docker: Dict[str, Any]) -> bool:
    """`docker run --gpus` exists on this daemon (Docker 19.03 and later)."""
    try:
        return Version(docker.get("server_version") or "0") >= Version(
            knowledge.load("container")["docker_min_for_gpus_flag"]
        )
    except InvalidVersion:  # an odd vendor version string: such daemons are recent
        return True


@dataclass
class RunLine:
    """A `docker run` line as option groups and the image's command, with the GPU flag's reason."""

    options: List[List[str]]
    image_command: List[str]
    gpu_flag: List[str]
    reason: str
    notes: List[str] = field(default_factory=list)

    @property
    def argv(self) -> List[str]:
        return ["docker", "run", *(word for group in self.options for word in group), *self.image_command]

    def command(self, multiline: bool = True) -> str:
        """The shell command: one option group per line when `multiline`, the image and its command last."""
        lines = [["docker", "run"], *self.options, self.image_command]
        text = [" ".join(shlex.quote(w) for w in line) for line in (lines if multiline else [self.argv])]
        return " \\\n    ".join(text)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "argv": self.argv,
            "command": self.command(multiline=False),
            "gpu_flag": self.gpu_flag,
            "reason": self.reason,
            "notes": self.notes,
        }


def gpu_flag(host: Dict[str, Any]) -> Tuple[List[str], str]:
    """`--gpus all` where the daemon and the toolkit's hook serve it, else the registered nvidia runtime."""
    docker = host.get("docker") or {}
    toolkit = host.get("toolkit") or {}
    registered = (
        "nvidia" in (docker.get("runtimes") or [])
        if docker.get("reachable")
        else "nvidia" in ((host.get("daemon_json") or {}).get("runtimes") or {})
    )
    if docker.get("reachable") and toolkit.get("hook") and gpus_flag_supported(docker):
        return ["--gpus", "all"], f"Docker {docker.get('server_version')} and the toolkit's hook serve --gpus"
    if registered:
        return (
            ["--runtime=nvidia", "-e", "NVIDIA_VISIBLE_DEVICES=all"],
            "the nvidia runtime is registered, but --gpus is not served here (older Docker or toolkit)",
        )
    return ["--gpus", "all"], (
        "docker or the NVIDIA Container Toolkit is not ready on this host, so this assumes "
        "a current setup (--gpus); `merlin-doctor check --host` says what to fix first"
    )


def inside_command(recipe: Recipe, jupyter_port: int, shell: bool) -> str:
    """What runs first in the container: the doctor on the image, then Jupyter (or a shell)."""
    then = (
        "exec bash"
        if shell
        else (f"exec jupyter notebook --ip 0.0.0.0 --port {jupyter_port} --no-browser --allow-root --notebook-dir /")
    )
    return (
        f"export PYTHONPATH={DOCTOR_MOUNT}${{PYTHONPATH:+:$PYTHONPATH}}; "
        f"python -m merlin_doctor check --recipe {shlex.quote(recipe.name)}; {then}"
    )


def docker_run(
    recipe: Recipe,
    host: Dict[str, Any],
    workdir: str,
    doctor_package: str,
    jupyter_port: int = 8888,
    shell: bool = False,
) -> RunLine:
    """The `docker run` line for `recipe` on the host `host` (the container_host facts)."""
    flag, reason = gpu_flag(host)
    options = [
        ["--rm", "-it"],
        flag,
        # NGC's recommendations: shared memory for DataLoader/NCCL, no locked-memory or stack limits.
        ["--ipc=host", "--ulimit", "memlock=-1", "--ulimit", "stack=67108864"],
        ["--cap-add", "SYS_NICE"],  # the article's: lets NUMA-aware libraries set affinities
        ["-v", f"{workdir}:{WORK_MOUNT}", "-w", WORK_MOUNT],
        ["-v", f"{doctor_package}:{DOCTOR_MOUNT}/merlin_doctor:ro"],
    ]
    notes = [
        f"GPU flag {' '.join(flag)}: {reason}",
        f"your work: {workdir} is {WORK_MOUNT} inside; everything else is gone when the container exits (--rm)",
        f"the doctor runs from {doctor_package}, mounted read-only (the image's Python 3.8 cannot pip-install it)",
    ]
    if not shell:
        options.append(["-p", f"{jupyter_port}:{jupyter_port}"])
        notes.append(
            f"Jupyter: open the http://127.0.0.1:{jupyter_port}/?token=... line it prints; "
            "the image's example notebooks are in /Merlin/examples and /models/examples"
        )
    image_command = [recipe.image or "", "bash", "-c", inside_command(recipe, jupyter_port, shell)]
    return RunLine(options, image_command, flag, reason, notes)
