"""Checks: pure functions `(facts, recipe) -> Finding`, registered with what they need.

A check reads only the probes it declares (`probes=`), may depend on other checks
(`needs=`: skipped with the reason when one of them did not pass), and names the step
that repairs it (`step=`). Its docstring's first line is its description in
`merlin-doctor list`. Other packages add checks through the `merlin_doctor.checks`
entry-point group (each entry point names a module that registers checks on import).
"""

from __future__ import annotations

import importlib
import pathlib
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Optional,
    Protocol,
    Sequence,
    Tuple,
)

from merlin_doctor.verdict import Finding

if TYPE_CHECKING:
    from merlin_doctor.recipe import Recipe


class FactsView(Protocol):
    """The facts a check may read: each declared probe's data, by probe name."""

    def __getitem__(self, name: str) -> Dict[str, Any]: ...


#: Modules of built-in checks, in the order their checks run (slow ones run last anyway).
BUILTIN_MODULES = ("host", "interpreter", "packages", "gpu", "cuda", "activation", "env", "container", "tensorflow")
ENTRY_POINT_GROUP = "merlin_doctor.checks"

CheckFunction = Callable[["FactsView", "Recipe"], Finding]


@dataclass(frozen=True)
class Check:
    id: str
    function: CheckFunction
    probes: Tuple[str, ...]
    needs: Tuple[str, ...] = ()
    step: Optional[str] = None
    gpu: bool = False  # only meaningful on a GPU machine: skipped with --cpu-ok / gpu: none recipes
    optional_probes: Tuple[str, ...] = ()  # read when present; a snapshot without them still judges

    @property
    def area(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def description(self) -> str:
        doc = (self.function.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else self.id


_REGISTRY: Dict[str, Check] = {}


def check(
    id: str,
    probes: Sequence[str],
    needs: Sequence[str] = (),
    step: Optional[str] = None,
    gpu: bool = False,
    optional_probes: Sequence[str] = (),
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check function under a stable id such as `gpu.driver`."""

    def register(function: CheckFunction) -> CheckFunction:
        if id in _REGISTRY and _REGISTRY[id].function is not function:
            raise ValueError(f"check id {id!r} is registered twice")
        _REGISTRY[id] = Check(id, function, tuple(probes), tuple(needs), step, gpu, tuple(optional_probes))
        return function

    return register


def is_gpu_check(check_id: Optional[str]) -> bool:
    """Whether a check id (or an area: `cuda`) names only GPU checks: what they judge cannot be
    the cause of anything on a machine meant to run on the CPU."""
    if not check_id:
        return False
    named = [c for c in _REGISTRY.values() if c.id == check_id or c.area == check_id]
    return bool(named) and all(c.gpu for c in named)


def all_checks(plugins: bool = True) -> List[Check]:
    """Every registered check, built-ins first, in registration order."""
    for name in BUILTIN_MODULES:
        importlib.import_module(f"merlin_doctor.checks.{name}")
    if plugins:
        _load_plugins()
    return list(_REGISTRY.values())


def _load_plugins() -> None:
    """Import the modules named by `merlin_doctor.checks` entry points.

    Only metadata directories whose entry_points.txt names the group are handed to
    importlib.metadata: `entry_points()` parses every distribution's, which cost more
    than the rest of `check --fast` in an env holding TensorFlow and Merlin.
    """
    from merlin_doctor.sitepath import dirs_with_entry_points

    for info_dir in dirs_with_entry_points(ENTRY_POINT_GROUP):
        from importlib import metadata

        try:
            dist = metadata.PathDistribution(pathlib.Path(info_dir))
            selected = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        except Exception:  # a broken distribution's metadata must not stop the doctor
            continue
        for ep in selected:
            try:
                ep.load()
            except Exception as exc:  # shown as an `error` verdict instead of being lost
                _register_broken_plugin(ep.name, f"{type(exc).__name__}: {exc}")


def _register_broken_plugin(name: str, error: str) -> None:
    def broken(facts: FactsView, recipe: Recipe) -> Finding:
        raise RuntimeError(f"the check plugin {name!r} failed to load: {error}")

    broken.__doc__ = f"Check plugin {name} (failed to load)."
    _REGISTRY.setdefault(f"plugin.{name}", Check(f"plugin.{name}", broken, ()))
