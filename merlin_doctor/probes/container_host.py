"""The host side of the container route: docker, the NVIDIA Container Toolkit, their config.

Every external command runs with a timeout (a wedged docker daemon hangs `docker info`),
and every file is read under the context's root, so tests can stand in a whole host.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional

from merlin_doctor import knowledge
from merlin_doctor.probes.context import ProbeContext

MAX_TEXT = 4000  # characters of any command's output kept as evidence


def _run(ctx: ProbeContext, argv: List[str], timeout: float) -> Dict[str, Any]:
    """Run a command found on the context's PATH; its failure is data, never an exception."""
    path = shutil.which(argv[0], path=ctx.env.get("PATH", ""))
    if not path:
        return {"found": False}
    try:
        proc = subprocess.run(
            [path, *argv[1:]],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=ctx.env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return {
            "found": True,
            "path": path,
            "timed_out": True,
            "error": f"`{' '.join(argv)}` did not answer within {timeout:g} s",
        }
    except OSError as exc:
        return {"found": True, "path": path, "error": f"cannot run {path}: {exc}"}
    return {
        "found": True,
        "path": path,
        "returncode": proc.returncode,
        "stdout": proc.stdout[-MAX_TEXT:],
        "stderr": proc.stderr.strip()[-MAX_TEXT:],
    }


def _version(text: str) -> Optional[str]:
    m = re.search(r"\b(\d+\.\d+(?:\.\d+)?)\b", text or "")
    return m.group(1) if m else None


def _docker(ctx: ProbeContext, timeout: float, image: Optional[str]) -> Dict[str, Any]:
    client = _run(ctx, ["docker", "--version"], timeout)
    if not client["found"]:
        return {"installed": False}
    out: Dict[str, Any] = {
        "installed": True,
        "path": client["path"],
        "client_version": _version(client.get("stdout", "")),
        "host": ctx.env.get("DOCKER_HOST"),
        "remote": _remote(ctx),
    }
    info = _run(ctx, ["docker", "info", "--format", "{{json .}}"], timeout)
    try:
        data = json.loads(info.get("stdout") or "null")
    except ValueError:
        data = None
    data = data if isinstance(data, dict) else {}
    errors = [e for e in data.get("ServerErrors") or [] if e]
    reachable = info.get("returncode") == 0 and bool(data.get("ServerVersion")) and not errors
    out.update(reachable=reachable, timed_out=bool(info.get("timed_out")))
    if not reachable:
        out["error"] = info.get("error") or "; ".join(errors) or info.get("stderr") or "docker info failed"
        return out
    root = data.get("DockerRootDir") or None
    out.update(
        server_version=data.get("ServerVersion"),
        runtimes=sorted(data.get("Runtimes") or {}),
        default_runtime=data.get("DefaultRuntime"),
        root_dir=root,
        cdi_spec_dirs=data.get("CDISpecDirs") or [],
        warnings=data.get("Warnings") or [],
        root_dir_free_bytes=_free_bytes(ctx, root) if root and not out["remote"] else None,
    )
    if image:
        inspect = _run(ctx, ["docker", "image", "inspect", "--format", "{{.Size}}", image], timeout)
        size = (inspect.get("stdout") or "").strip()
        out["image"] = {
            "name": image,
            "present": inspect.get("returncode") == 0,
            "size_bytes": int(size) if size.isdigit() else None,
        }
    return out


def _remote(ctx: ProbeContext) -> bool:
    """A daemon reached over tcp:// or ssh:// keeps its disk elsewhere."""
    return ctx.env.get("DOCKER_HOST", "").startswith(("tcp://", "ssh://"))


def _free_bytes(ctx: ProbeContext, path: str) -> Optional[int]:
    """Free space on the file system holding `path`, or its nearest existing parent."""
    target = Path(ctx.host_path(path))
    while not target.exists() and target != target.parent:
        target = target.parent
    try:
        return shutil.disk_usage(str(target)).free
    except OSError:
        return None


def _daemon_json(ctx: ProbeContext, path: str) -> Dict[str, Any]:
    out: Dict[str, Any] = {"path": path, "exists": False}
    try:
        text = Path(ctx.host_path(path)).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return out
    except OSError as exc:
        return dict(out, exists=True, error=f"cannot read: {exc.strerror}")
    out["exists"] = True
    try:
        data = json.loads(text)
    except ValueError as exc:
        return dict(out, error=f"not valid JSON: {exc}")
    if not isinstance(data, dict):
        return dict(out, error="not a JSON object")
    runtimes: Dict[str, Any] = data["runtimes"] if isinstance(data.get("runtimes"), dict) else {}
    return dict(
        out,
        runtimes={name: conf if isinstance(conf, dict) else {} for name, conf in runtimes.items()},
        default_runtime=data.get("default-runtime"),
    )


def _dropins(ctx: ProbeContext, directory: str) -> List[Dict[str, Any]]:
    """systemd drop-ins for docker.service that start dockerd with --add-runtime (the article's override.conf)."""
    found = []
    base = Path(ctx.host_path(directory))
    for conf in sorted(base.glob("*.conf")) if base.is_dir() else []:
        try:
            text = conf.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        added = re.findall(r"--add-runtime[= ](\w[\w.-]*)=", text)
        if added:
            found.append({"path": os.path.join(directory, conf.name), "add_runtime": added})
    return found


def _toolkit(ctx: ProbeContext, timeout: float, table: Dict[str, Any]) -> Dict[str, Any]:
    ctk = _run(ctx, ["nvidia-ctk", "--version"], timeout)
    cli = _run(ctx, ["nvidia-container-cli", "--version"], timeout)
    search = ctx.env.get("PATH", "")
    return {
        "nvidia_ctk": {"path": ctk.get("path"), "version": _version(ctk.get("stdout", "")), "error": ctk.get("error")},
        "cli": {"path": cli.get("path"), "version": _version(cli.get("stdout", ""))},
        "runtime": shutil.which("nvidia-container-runtime", path=search),
        "hook": next((p for p in (shutil.which(h, path=search) for h in table["gpus_hooks"]) if p), None),
        "apt_list": os.path.isfile(ctx.host_path(table["toolkit_apt_list"])),
    }


def _cli_info(ctx: ProbeContext, timeout: float) -> Dict[str, Any]:
    """`nvidia-container-cli info`: what libnvidia-container (the layer under every GPU container) sees."""
    info = _run(ctx, ["nvidia-container-cli", "info"], timeout)
    if not info["found"]:
        return {"ran": False}
    text = info.get("stdout", "")
    fields = dict(re.findall(r"^(NVRM version|CUDA version):\s*(\S+)", text, re.M))
    ok = info.get("returncode") == 0
    return {
        "ran": True,
        "ok": ok,
        "nvrm_version": fields.get("NVRM version"),
        "cuda_version": fields.get("CUDA version"),
        "devices": len(re.findall(r"^Device Index:", text, re.M)),
        "error": None if ok else (info.get("error") or info.get("stderr") or f"exit code {info.get('returncode')}"),
    }


def probe(ctx: ProbeContext) -> Dict[str, Any]:
    table = knowledge.load("container")
    timeout = min(ctx.timeout, float(table["command_timeout_s"]))
    recipe = ctx.recipe() if ctx.recipe_path else None
    image = recipe.image if recipe is not None else None
    return {
        "docker": _docker(ctx, timeout, image),
        "daemon_json": _daemon_json(ctx, table["daemon_json"]),
        "dropins": _dropins(ctx, table["systemd_dropins"]),
        "toolkit": _toolkit(ctx, timeout, table),
        "cli_info": _cli_info(ctx, timeout),
    }
