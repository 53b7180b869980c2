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
