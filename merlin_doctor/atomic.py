"""Atomic file writes: a temp file in the target's directory, flushed, then renamed over it.

A reader (or a run killed halfway) sees the old file or the new one, never half of one.
Only a regular file is replaced so: a file the user names with -o that is a character
device or a FIFO (`-o /dev/stdout`, a pipe) is written to, never swapped for a file.
Every OSError leaves here naming the file the caller asked for.
"""

from __future__ import annotations

import os
import stat
import tempfile
from typing import Callable, Optional

from merlin_doctor.contained import read_regular


def write_atomic(path: str, data: bytes, mode: Optional[int] = None) -> None:
    """Replace `path` with `data`; `mode` sets the permissions (default: the temp file's 0600)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise named(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise named(exc, path) from None
        raise


def named(exc: OSError, path: str) -> OSError:
    """The error with the file the user knows (`path`), not a temp file or none at all
    (a write() that hits a full disk names no file)."""
    return type(exc)(exc.errno, exc.strerror or str(exc), path) if exc.errno else OSError(None, str(exc), path)


def _stat(path: str) -> Optional[os.stat_result]:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise named(exc, path) from None


def write_output(path: str, data: bytes) -> None:
    """Write a file the user named: a regular file (or none yet) is replaced atomically (through a
    symlink, its target is); a character device or a FIFO is written to in place."""
    st = _stat(path)
    if st is None or stat.S_ISREG(st.st_mode):
        write_atomic(os.path.realpath(path) if st is not None else path, data)
        return
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        raise OSError(None, "neither a regular file nor a character device or FIFO", path)
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise named(exc, path) from None


def replaceable(path: str, ours: Callable[[bytes], bool]) -> bool:
    """Whether `write_output` may write `path` without --force: nothing is there, an empty file, a
    device or FIFO (written to, not replaced), or a file that `ours` recognises as made by us."""
    st = _stat(path)
    if st is None or not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return True
    data = read_regular(path)
    return data is not None and ours(data)
