"""The engine contract, and what every engine shares: reading conda-meta, judging a prefix.

An engine only creates conda environments; everything after that (pip groups, links,
activation scripts) is the same for every engine and lives in ``steps``.

Safety rule shared by all engines: an engine never deletes an existing environment.
``conda create --yes`` and ``micromamba create --yes`` would (they answer "Remove
existing environment?" with yes), so an existing env is converged in place instead
(``install`` into it), and a non-empty directory that is not a conda env is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Protocol, Sequence, runtime_checkable

Progress = Callable[[str], None]
"""Receives one human-readable line per event (solving, downloading NAME, linking NAME)."""

RESERVED_ENV_NAMES = ("base", "root")
BAD_ENV_NAME_CHARS = "/ :#"


class EngineError(Exception):
    """An engine failed or refused; the message is meant for the user as is."""


class EngineUnavailable(EngineError):
    """No usable engine of the kind asked for; the message says what was looked for."""


@runtime_checkable
class Engine(Protocol):
    name: str

    def available(self) -> bool:
        """Whether this engine can run here (its executable or library is present)."""

    def missing_reason(self) -> str:
        """What was looked for and how to get it: the line shown when unavailable."""

    def create_command(self, prefix: Path, channels: Sequence[str], specs: Sequence[str]) -> list[str] | None:
        """The exact command ``create`` runs (CLI engines), or None (embedded engine)."""

    def create(
        self,
        prefix: Path,
        channels: Sequence[str],
        specs: Sequence[str],
        progress: Progress | None = None,
    ) -> None:
        """Make ``prefix`` a conda env holding ``specs``; converge an existing one in place."""

    def installed(self, prefix: Path) -> dict[str, str]:
        """``{name: version}`` of the packages recorded in ``prefix/conda-meta``."""

    def envs_dir(self) -> Path:
        """Where a named env lives: ``envs_dir() / name``."""


def installed_packages(prefix: Path) -> dict[str, str]:
    """Read ``conda-meta/*.json`` into ``{name: version}``.

    A record that cannot be read (a run killed while writing it) counts as not
    installed, so the create step is not done and the next run repairs it.
    """
    out: dict[str, str] = {}
    for record in sorted(Path(prefix, "conda-meta").glob("*.json")):
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            out[data["name"]] = data["version"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def prefix_state(prefix: Path) -> str:
    """``absent``, ``empty`` (an empty directory), ``env`` (has conda-meta/) or ``foreign``."""
    prefix = Path(prefix)
    if not prefix.exists():
        return "absent"
    if (prefix / "conda-meta").is_dir():
        return "env"
    if prefix.is_dir() and not any(prefix.iterdir()):
        return "empty"
    return "foreign"


def refuse_foreign(prefix: Path) -> str:
    """Return ``prefix_state(prefix)``, raising for a directory that is not a conda env."""
    state = prefix_state(prefix)
    if state == "foreign":
        raise EngineError(
            f"{prefix} exists and is not a conda environment (no conda-meta/); refusing to "
            "install into it. Choose another prefix, or move it away yourself."
        )
    return state


def first_writable(dirs: Sequence[Path]) -> Path:
    """conda's rule for envs_dirs: the first one this user can write (or create)."""
    for d in dirs:
        probe = Path(d)
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if probe.is_dir() and os.access(probe, os.W_OK):
            return Path(d)
    return Path(dirs[0])


def prefix_for_name(engine: Engine, name: str) -> Path:
    """The prefix of the named env ``name`` for ``engine``, with conda's naming rules."""
    if not name or name in RESERVED_ENV_NAMES or any(c in name for c in BAD_ENV_NAME_CHARS):
        raise ValueError(
            f"invalid environment name {name!r}: it must be non-empty, not "
            f"{' or '.join(RESERVED_ENV_NAMES)}, and contain no '/', ' ', ':' or '#'"
        )
    return engine.envs_dir() / name
