"""Conda engines: conda, mamba, micromamba (their CLIs) and rattler (embedded, py-rattler).

``select_engine("auto")`` prefers micromamba, then mamba, then conda (fastest first, all
use the user's own tool and caches), and falls back to the embedded rattler engine, which
needs no conda at all.
"""

from __future__ import annotations

from merlin_doctor.names import AUTO_ENGINES, ENGINE_CHOICES
from merlin_doctor.setup.engines.base import (
    Engine,
    EngineError,
    EngineUnavailable,
    Progress,
    installed_packages,
    prefix_for_name,
    prefix_state,
)
from merlin_doctor.setup.engines.cli import CliEngine
from merlin_doctor.setup.engines.rattler import RattlerEngine

__all__ = [
    "AUTO_ENGINES",
    "ENGINE_CHOICES",
    "CliEngine",
    "Engine",
    "EngineError",
    "EngineUnavailable",
    "Progress",
    "RattlerEngine",
    "installed_packages",
    "make_engine",
    "prefix_for_name",
    "prefix_state",
    "select_engine",
]


def make_engine(name: str) -> Engine:
    """The engine called ``name``, usable or not (for plans and command lines)."""
    if name == "rattler":
        return RattlerEngine()
    return CliEngine(name)


def select_engine(name: str = "auto") -> Engine:
    """The engine to use: ``name`` itself, or the first usable one in ``AUTO_ENGINES``.

    Raises ``EngineUnavailable`` saying what was looked for when none is usable, and
    ``ValueError`` for a name that is no engine.
    """
    if name not in ENGINE_CHOICES:
        raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_CHOICES)}")
    engines = [make_engine(n) for n in (AUTO_ENGINES if name == "auto" else (name,))]
    for engine in engines:
        if engine.available():
            return engine
    looked = "\n".join(f"  - {engine.missing_reason()}" for engine in engines)
    what = "no conda engine is usable" if name == "auto" else f"the {name} engine is not usable"
    raise EngineUnavailable(f"{what}; looked for:\n{looked}")
