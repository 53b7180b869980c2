"""The kernel side of the driver: module version, device nodes, nouveau, visible devices (WSL: the host probe)."""

from __future__ import annotations

import glob
import os
import re
from typing import Any, Dict, List, Optional

from merlin_doctor.probes.context import ProbeContext


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(1 << 20)
    except OSError:
        return None


def _modules(text: str) -> List[str]:
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def _device_nodes(ctx: ProbeContext) -> List[Dict[str, Any]]:
    nodes = []
    for path in sorted(glob.glob(ctx.host_path("/dev/nvidia*")) + glob.glob(ctx.host_path("/dev/dxg"))):
        nodes.append(
            {
                "path": "/" + os.path.relpath(path, ctx.root) if ctx.root != "/" else path,
                "readable": os.access(path, os.R_OK),
                "writable": os.access(path, os.W_OK),
            }
        )
    return nodes


def probe(ctx: ProbeContext) -> Dict[str, Any]:
    version_text = _read(ctx.host_path("/proc/driver/nvidia/version"))
    match = re.search(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)", version_text or "")
    modules = _modules(_read(ctx.host_path("/proc/modules")) or "")
    return {
        "module_version": match.group(1) if match else None,
        "version_text": (version_text or "").strip() or None,
        "modules_loaded": sorted(m for m in modules if m.startswith("nvidia") or m == "nouveau"),
        "nouveau_loaded": "nouveau" in modules,
        "device_nodes": _device_nodes(ctx),
        "cuda_visible_devices": ctx.env.get("CUDA_VISIBLE_DEVICES"),
    }
