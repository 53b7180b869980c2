"""`merlin-doctor check`'s flags as one object: the CLI, the notebook API, `fix`, the fleet
and the runner all take it, so a flag means the same thing everywhere. Import-free."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Union

from merlin_doctor.errors import InputError

Names = Union[str, Iterable[str], None]


def _names(value: Names) -> List[str]:
    """`only="gpu"` and `only=["gpu", "host"]` both work from Python."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


@dataclass
class CheckOptions:
    recipe: Optional[str] = None
    only: List[str] = field(default_factory=list)
    skip: List[str] = field(default_factory=list)
    fast: bool = False
    cpu_ok: bool = False
    from_file: Optional[str] = None
    host: bool = False
    strict: bool = False
    timeout: float = 30.0
    debug: bool = False
    device: str = "auto"
    e2e_size: str = "quick"
    #: The env to judge from outside (`--prefix DIR` / `--name ENV`); neither: the one the doctor runs in.
    prefix: Optional[str] = None
    name: Optional[str] = None

    def __post_init__(self) -> None:
        self.only, self.skip = _names(self.only), _names(self.skip)
        if not (isinstance(self.timeout, (int, float)) and math.isfinite(self.timeout) and self.timeout > 0):
            raise InputError(f"timeout must be a finite number of seconds above 0, not {self.timeout!r}")
