"""The running Python and which environment it belongs to."""
from __future__ import annotations

import os
import platform
import sys
from typing import Any, Dict

from merlin_doctor.probes.context import ProbeContext

ENV_VARS = ("CONDA_PREFIX", "CONDA_DEFAULT_ENV", "CONDA_EXE", "VIRTUAL_ENV", "CONDA_SHLVL")


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
        "env": {k: ctx.env[k] for k in ENV_VARS if k in ctx.env},
    }
