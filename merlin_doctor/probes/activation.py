"""The env's activation scripts and what the live process actually has.

Checks judge these facts against the recipe; this probe only reads files and the
environment, and records which paths exist (checks may not touch the disk).
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional

from merlin_doctor.probes import ProbeContext

WATCHED = ("LD_LIBRARY_PATH", "XLA_FLAGS", "PATH", "CONDA_PREFIX", "CUDA_HOME", "CUDA_PATH")
SCRIPT_DIRS = ("etc/conda/activate.d", "etc/conda/deactivate.d")
MAX_SCRIPT_BYTES = 65536


def _scripts(prefix: str) -> Dict[str, Dict[str, str]]:
    found: Dict[str, Dict[str, str]] = {}
    for rel in SCRIPT_DIRS:
        directory = Path(prefix, rel)
        entries: Dict[str, str] = {}
        if directory.is_dir():
            for path in sorted(directory.glob("*.sh")):
                try:
                    entries[path.name] = path.read_text(encoding="utf-8", errors="replace")[:MAX_SCRIPT_BYTES]
                except OSError as exc:
                    entries[path.name] = f"<unreadable: {exc}>"
        found[rel.rsplit("/", 1)[-1]] = entries
    return found


def xla_data_dir(xla_flags: str) -> Optional[str]:
    m = re.search(r"--xla_gpu_cuda_data_dir=(\S+)", xla_flags or "")
    return m.group(1) if m else None


def probe(ctx: ProbeContext) -> Dict[str, Any]:
    env = ctx.env
    prefix = env.get("CONDA_PREFIX")
    ld_entries: List[Dict[str, Any]] = [
        {"path": p, "exists": os.path.isdir(p)} for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p
    ]
    data_dir = xla_data_dir(env.get("XLA_FLAGS", ""))
    libdevice = os.path.join(data_dir, "nvvm", "libdevice", "libdevice.10.bc") if data_dir else None
    return {
        "prefix": prefix,
        "variables": {k: env[k] for k in WATCHED if k in env},
        "scripts": _scripts(prefix) if prefix else {},
        "ld_library_path": ld_entries,
        "xla_data_dir": data_dir,
        "libdevice": {"path": libdevice, "exists": bool(libdevice and os.path.isfile(libdevice))},
        "ptxas": shutil.which("ptxas", path=env.get("PATH", "")),
    }
