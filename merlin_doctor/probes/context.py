"""What a probe may know beyond the machine itself: the recipe, the timeout, the environment
it judges (its prefix, interpreter and activated variables) and the root of the host tree.
Serializable, so child processes get the same."""

from __future__ import annotations

import copy
import functools
import os
import sys
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, Optional


@dataclass
class ProbeContext:
    """What a probe may know beyond the machine itself; serializable for child processes."""

    recipe_path: Optional[str] = None
    timeout: float = 30.0
    env: Dict[str, str] = field(default_factory=lambda: dict(os.environ))
    options: Dict[str, Any] = field(default_factory=dict)
    #: Where /proc, /dev, /usr/local/cuda* and /usr/lib/wsl are read from. "/" on a real
    #: machine; the tests' simulated GPU trees set MERLIN_DOCTOR_SYSROOT to their own root.
    root: str = field(default_factory=lambda: os.environ.get("MERLIN_DOCTOR_SYSROOT", "/"))
    #: The env being judged; None: the one this process runs in (CONDA_PREFIX, else VIRTUAL_ENV).
    prefix: Optional[str] = None
    #: The judged env's interpreter, when it is not the one running the doctor (`check
    #: --prefix/--name`): probes that read the env's Python run with it (probes/scheduler.py).
    python: Optional[str] = None
    #: Where slow probes report progress as it happens (not serialized: children get none).
    progress: Optional[Callable[[Dict[str, Any]], None]] = field(default=None, repr=False, compare=False)

    def host_path(self, path: str) -> str:
        """`/proc/modules` under the context's root."""
        return os.path.join(self.root, path.lstrip("/"))

    def to_dict(self) -> Dict[str, Any]:
        """Everything a child process needs (the progress callback stays in this process)."""
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if f.name != "progress"}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> ProbeContext:
        return cls(**data)

    def recipe(self):  # -> Recipe; imported lazily to keep child start-up small
        return _recipe_at(self.recipe_path)

    def judged_prefix(self) -> Optional[str]:
        """The env being judged: the one named, else the activated conda env or venv, if any."""
        from merlin_doctor.activation import active_env

        return self.prefix or active_env(self.env, sys.prefix)[0]

    def activated(self):  # -> Optional[ActivatedEnv]
        """The judged env as activation leaves it (activated.py), when there is an env and a recipe."""
        from merlin_doctor.activated import ActivatedEnv
        from merlin_doctor.envstate import env_kind

        prefix = self.judged_prefix()
        if not prefix or not self.recipe_path:
            return None
        return ActivatedEnv(self.recipe(), prefix, env_kind(prefix) or "conda")


@functools.lru_cache(maxsize=8)
def _recipe_at(path: Optional[str]):
    """Probes ask for the recipe several times a run; parse each file once."""
    from merlin_doctor.recipe import load_recipe

    return load_recipe(path)
