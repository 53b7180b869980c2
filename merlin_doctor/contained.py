"""Paths inside an env: every write, link and copy stays in it, and no read blocks.

A recipe's paths are checked when it loads (recipe.py: they start at {prefix} or
{site_packages} and hold no `..`). They are checked again here, after symlinks, at the
moment a step writes: a directory inside the env that is a symlink to somewhere else
(planted, or made by another tool) must not carry a write, a link or a copy out of it,
with or without --force. Reads go through `open_regular`, so a FIFO or a device where a
script or a library should be is reported, never waited on.
"""

from __future__ import annotations

import contextlib
import os
import stat
from typing import BinaryIO, Iterator, Optional


class OutsideEnv(Exception):
    """A path that would take a step outside its env; the message names both."""


def is_inside(prefix: str, path: str) -> bool:
    """Whether `path`, after every symlink (the existing part of it), lies within `prefix`."""
    root = os.path.realpath(prefix)
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def where_outside(prefix: str, path: str) -> Optional[str]:
    """Why a write to `path` would leave the env (its directory resolves elsewhere), or None."""
    parent = os.path.dirname(path)
    if is_inside(prefix, parent):
        return None
    return f"{parent} leads to {os.path.realpath(parent)}, outside the env {prefix}"


def ensure_parent(prefix: str, path: str) -> None:
    """Make `path`'s directory inside the env, refusing when it resolves out of it (before and after)."""
    problem = where_outside(prefix, path)
    if problem is None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        problem = where_outside(prefix, path)  # a symlink planted while the directories were made
    if problem is not None:
        raise OutsideEnv(f"refusing to write {path}: {problem} (a symlink?); move it away and run again")


@contextlib.contextmanager
def open_regular(path: str) -> Iterator[Optional[BinaryIO]]:
    """The open file when `path` is a readable regular file, else None (missing, a directory,
    a FIFO, a device, unreadable). Opened non-blocking, so a FIFO cannot stall the reader."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        yield None
        return
    with os.fdopen(fd, "rb") as fh:
        yield fh if stat.S_ISREG(os.fstat(fd).st_mode) else None


def read_regular(path: str, limit: int = -1) -> Optional[bytes]:
    """The bytes (at most `limit`) of a regular file; None when `path` is not one (see open_regular)."""
    with open_regular(path) as fh:
        return None if fh is None else fh.read(limit)
