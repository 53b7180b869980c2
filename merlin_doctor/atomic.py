"""Atomic file writes: a temp file in the target's directory, flushed, then renamed over it.

A reader (or a run killed halfway) sees the old file or the new one, never half of one.
"""
from __future__ import annotations

import os
import tempfile
from typing import Optional


def write_atomic(path: str, data: bytes, mode: Optional[int] = None) -> None:
    """Replace `path` with `data`; `mode` sets the permissions (default: the temp file's 0600)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
