"""The running Python and which environment it belongs to."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from typing import Any, Dict, Optional

from merlin_doctor.probes.context import ProbeContext

ENV_VARS = ("CONDA_PREFIX", "CONDA_DEFAULT_ENV", "CONDA_EXE", "VIRTUAL_ENV", "CONDA_SHLVL")


def _doctor_source() -> Optional[str]:
    """The checkout this merlin-doctor runs from (it is not on any package index), if it is one."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__ and os.path.dirname(__file__))))
    return root if os.path.isfile(os.path.join(root, "pyproject.toml")) else None


def probe(ctx: ProbeContext) -> Dict[str, Any]:
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        "is_conda_env": os.path.isdir(os.path.join(sys.prefix, "conda-meta")),
        # Resolved here, on the machine itself: a saved snapshot is judged elsewhere.
        "is_active_conda_env": bool(ctx.env.get("CONDA_PREFIX"))
        and os.path.realpath(ctx.env["CONDA_PREFIX"]) == os.path.realpath(sys.prefix),
        "is_active_venv": bool(ctx.env.get("VIRTUAL_ENV"))
        and os.path.realpath(ctx.env["VIRTUAL_ENV"]) == os.path.realpath(sys.prefix),
        "has_conda": bool(
            ctx.env.get("CONDA_EXE")
            or ctx.env.get("MAMBA_EXE")
            or any(shutil.which(exe, path=ctx.env.get("PATH", "")) for exe in ("conda", "mamba", "micromamba"))
        ),
        "doctor_source": _doctor_source(),
        "env": {k: ctx.env[k] for k in ENV_VARS if k in ctx.env},
    }
