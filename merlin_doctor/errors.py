"""Errors about the user's input: shown as one line and exit code 2, never a traceback."""

from __future__ import annotations

from typing import Optional


class InputError(Exception):
    """Bad input (recipe, snapshot, log file, flag value): one clear message, file and line."""

    def __init__(self, message: str, file: Optional[str] = None, line: Optional[int] = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        return where + self.message


def os_error_line(exc: OSError) -> str:
    """An OSError as one line: the file(s) it is about, then the errno's meaning."""
    what = exc.strerror or str(exc)
    files = [str(f) for f in (exc.filename, getattr(exc, "filename2", None)) if f is not None]
    return f"{' -> '.join(files)}: {what}" if files else what


def one_line(text: str, limit: int = 1000) -> str:
    """A message as a single line of bounded length: control characters escaped, long text cut."""
    flat = "".join(c if c >= " " and c != "\x7f" else f"\\x{ord(c):02x}" for c in text[:limit])
    return flat + ("…" if len(text) > limit else "")
