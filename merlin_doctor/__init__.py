"""merlin-doctor: set up and diagnose NVIDIA Merlin + TensorFlow GPU workstations.

Importing this package is cheap on purpose: nothing heavy (tensorflow, merlin, dask,
cudf) is imported here or by any module at import time.
"""

from __future__ import annotations

__version__ = "0.1.0"


def check(recipe=None, **options):
    """Run the doctor from Python or Jupyter and return its CheckResult (a table in Jupyter).

    The keyword arguments are `merlin-doctor check`'s flags: `fast=True`, `recipe="cpu"`,
    `cpu_ok=True`, `only=["gpu"]`, `skip=...`, `host=True`, `from_file=...`, `strict=True`,
    `timeout=60`, `quiet=True`. The notebook module loads only when called.
    """
    from merlin_doctor.notebook import check as run

    return run(recipe=recipe, **options)


def load_ipython_extension(ipython) -> None:
    """`%load_ext merlin_doctor` adds the `%merlin_doctor check [FLAGS]` line magic."""
    from merlin_doctor.notebook import register_magic

    register_magic(ipython)
