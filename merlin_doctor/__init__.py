"""merlin-doctor: set up and diagnose NVIDIA Merlin + TensorFlow GPU workstations.

Importing this package is cheap on purpose: nothing heavy (tensorflow, merlin, dask,
cudf) is imported here or by any module at import time.
"""
from __future__ import annotations

__version__ = "0.1.0"
