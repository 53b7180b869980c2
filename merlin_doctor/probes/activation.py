"""The env's activation scripts and what the live process actually has.

Checks judge these facts against the recipe; this probe only reads files and the
environment, and records which paths exist (checks may not touch the disk).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from merlin_doctor.activation import SCRIPT_NAME, active_env, hooked, script_paths
from merlin_doctor.contained import read_regular
from merlin_doctor.probes.context import ProbeContext

WATCHED = ("LD_LIBRARY_PATH", "XLA_FLAGS", "PATH", "CONDA_PREFIX", "VIRTUAL_ENV", "CUDA_HOME", "CUDA_PATH")
SCRIPT_DIRS = ("etc/conda/activate.d", "etc/conda/deactivate.d")
MAX_SCRIPT_BYTES = 65536


def _read(path: Path) -> str:
    data = read_regular(str(path), MAX_SCRIPT_BYTES)  # bytes: a CR stays a CR
    return "<unreadable, or not a regular file>" if data is None else data.decode("utf-8", "replace")


def _venv_scripts(prefix: str) -> Dict[str, Any]:
    """A venv's scripts in the conda layout's shape (activate.d / deactivate.d: {name: text}),
    and whether its bin/activate runs them (`hooked`)."""
    found: Dict[str, Any] = {}
    for which, path in script_paths("venv", prefix):
        found[f"{which}.d"] = {SCRIPT_NAME: _read(Path(path))} if os.path.isfile(path) else {}
    activate = Path(prefix, "bin", "activate")
    found["hooked"] = hooked(_read(activate)) if activate.is_file() else {"activate": False, "deactivate": False}
    return found


def _scripts(prefix: str, kind: str) -> Dict[str, Dict[str, str]]:
    if kind == "venv":
        return _venv_scripts(prefix)
    found: Dict[str, Dict[str, str]] = {}
    for rel in SCRIPT_DIRS:
        directory = Path(prefix, rel)
        entries: Dict[str, str] = {}
        if directory.is_dir():
            for path in sorted(directory.glob("*.sh")):
                entries[path.name] = _read(path)
        found[rel.rsplit("/", 1)[-1]] = entries
    return found


def xla_data_dir(xla_flags: str) -> Optional[str]:
    """The value as XLA reads it (parse_flags_from_env.cc): unquoted up to whitespace, or
    in '...' (literal) or "..." (backslash escapes), the only way to give a path with spaces."""
    m = re.search(r"""--xla_gpu_cuda_data_dir=(?:"((?:[^"\\]|\\.)*)"?|'([^']*)'?|(\S+))""", xla_flags or "")
    if not m:
        return None
    if m.group(1) is not None:
        return re.sub(r"\\(.)", r"\1", m.group(1))
    return m.group(2) if m.group(2) is not None else m.group(3)


def _ptxas(ctx: ProbeContext, data_dir: Optional[str]) -> Dict[str, Any]:
    """ptxas where XLA looks: <cuda_data_dir>/bin, TF's build-time CUDA root, /usr/local/cuda, then PATH."""
    from merlin_doctor import knowledge

    built_with = knowledge.tensorflow_build(ctx.recipe().expect.tensorflow if ctx.recipe_path else None)
    roots = [data_dir] if data_dir else []
    roots += [ctx.host_path(r) for r in (built_with["toolkit_root"], "/usr/local/cuda")]
    candidates = [os.path.join(r, "bin", "ptxas") for r in roots]
    path = next((c for c in candidates if os.access(c, os.X_OK)), None) or shutil.which(
        "ptxas", path=ctx.env.get("PATH", "")
    )
    if not path:
        return {"path": None, "searched": candidates + ["$PATH"]}
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return {"path": path, "error": f"`ptxas --version` failed: {exc}"}
    m = re.search(r"release (\d+\.\d+), V(\d+\.\d+\.\d+)", out)
    return {"path": path, "version": m.group(2) if m else None, "release": m.group(1) if m else None}


def probe(ctx: ProbeContext) -> Dict[str, Any]:
    env = ctx.env
    prefix, kind = active_env(env, sys.prefix)
    ld_entries: List[Dict[str, Any]] = [
        {"path": p, "exists": os.path.isdir(p)} for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p
    ]
    data_dir = xla_data_dir(env.get("XLA_FLAGS", ""))
    libdevice = os.path.join(data_dir, "nvvm", "libdevice", "libdevice.10.bc") if data_dir else None
    fallback = ctx.host_path("/usr/local/cuda/nvvm/libdevice/libdevice.10.bc")  # XLA's own last resort
    return {
        "prefix": prefix,
        "kind": kind,
        "variables": {k: env[k] for k in WATCHED if k in env},
        "scripts": _scripts(prefix, kind or "conda") if prefix else {},
        "ld_library_path": ld_entries,
        "xla_data_dir": data_dir,
        "libdevice": {"path": libdevice, "exists": bool(libdevice and os.path.isfile(libdevice))},
        "fallback_libdevice": {"path": fallback, "exists": os.path.isfile(fallback)},
        "ptxas": _ptxas(ctx, data_dir),
    }
