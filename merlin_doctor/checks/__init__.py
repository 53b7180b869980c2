"""Checks: pure functions `(facts, recipe) -> Finding`, registered with what they need.

A check reads only the probes it declares (`probes=`), may depend on other checks
(`needs=`: skipped with the reason when one of them did not pass), and names the step
that repairs it (`step=`). Its docstring's first line is its description in
`merlin-doctor list`. Other packages add checks through the `merlin_doctor.checks`
entry-point group (each entry point names a module that registers checks on import).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from merlin_doctor.verdict import Finding

#: Modules of built-in checks, in the order their checks run (slow ones run last anyway).
BUILTIN_MODULES = ("host", "interpreter", "packages", "gpu", "cuda", "activation", "env", "container", "tensorflow")
ENTRY_POINT_GROUP = "merlin_doctor.checks"

CheckFunction = Callable[..., Finding]


@dataclass(frozen=True)
class Check:
    id: str
    function: CheckFunction
    probes: Tuple[str, ...]
    needs: Tuple[str, ...] = ()
    step: Optional[str] = None
    gpu: bool = False  # only meaningful on a GPU machine: skipped with --cpu-ok / gpu: none recipes

    @property
    def area(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def description(self) -> str:
        doc = (self.function.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else self.id


_REGISTRY: Dict[str, Check] = {}


def check(id: str, probes: Sequence[str], needs: Sequence[str] = (), step: Optional[str] = None,
          gpu: bool = False) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check function under a stable id such as `gpu.driver`."""

    def register(function: CheckFunction) -> CheckFunction:
        if id in _REGISTRY and _REGISTRY[id].function is not function:
            raise ValueError(f"check id {id!r} is registered twice")
        _REGISTRY[id] = Check(id, function, tuple(probes), tuple(needs), step, gpu)
        return function

    return register


def all_checks(plugins: bool = True) -> List[Check]:
    """Every registered check, built-ins first, in registration order."""
    for name in BUILTIN_MODULES:
        importlib.import_module(f"merlin_doctor.checks.{name}")
    if plugins:
        _load_plugins()
    return list(_REGISTRY.values())


def _load_plugins() -> None:
    """Import the modules named by `merlin_doctor.checks` entry points.

    Only distributions whose entry_points.txt names the group are parsed:
    `importlib.metadata.entry_points()` parses every one, which cost more than the rest of
    `check --fast` in an env holding TensorFlow and Merlin.
    """
    from importlib import metadata

    for dist in metadata.distributions():
        try:
            text = dist.read_text("entry_points.txt")
            if not text or f"[{ENTRY_POINT_GROUP}]" not in text:
                continue
            selected = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        except Exception:  # a broken distribution's metadata must not stop the doctor
            continue
        for ep in selected:
            try:
                ep.load()
            except Exception as exc:  # shown as an `error` verdict instead of being lost
                _register_broken_plugin(ep.name, f"{type(exc).__name__}: {exc}")


def _register_broken_plugin(name: str, error: str) -> None:
    def broken(facts, recipe) -> Finding:
        raise RuntimeError(f"the check plugin {name!r} failed to load: {error}")

    broken.__doc__ = f"Check plugin {name} (failed to load)."
    _REGISTRY.setdefault(f"plugin.{name}", Check(f"plugin.{name}", broken, ()))
