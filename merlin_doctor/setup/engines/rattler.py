"""The embedded engine: py-rattler solves and installs conda packages with no conda here.

py-rattler ships only as an abi3 wheel for CPython >= 3.10, so this module never imports
it at import time: on Python 3.9 it imports cleanly and reports itself unavailable.

Packages are cached under ``$XDG_CACHE_HOME/merlin-doctor/rattler`` (``pkgs/`` for
extracted packages, ``repodata/`` for channel indexes) and hard-linked into the prefix,
as conda does. On an existing env, packages outside the solution are left alone (never
removed) and installed ones are preferred by the solver, so a rerun changes nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Sequence

from merlin_doctor.setup.engines.base import (
    EngineError,
    Progress,
    first_writable,
    installed_packages,
    refuse_foreign,
)

PIP_REQUIREMENT = "py-rattler>=0.28,<0.29"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "merlin-doctor", "rattler")


class RattlerEngine:
    """Solve with ``rattler.solve`` and link with ``rattler.install``; no executable needed."""

    name = "rattler"

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    def available(self) -> bool:
        try:
            import rattler  # noqa: F401
        except ImportError:
            return False
        return True

    def missing_reason(self) -> str:
        return (
            f"rattler: py-rattler is not importable in this Python "
            f"({sys.version.split()[0]}, {sys.executable}); install it with "
            f"`{sys.executable} -m pip install '{PIP_REQUIREMENT}'` (it needs Python >= 3.10)"
        )

    def create_command(self, prefix: Path, channels: Sequence[str], specs: Sequence[str]) -> None:
        return None

    def create(
        self,
        prefix: Path,
        channels: Sequence[str],
        specs: Sequence[str],
        progress: Progress | None = None,
    ) -> None:
        """Solve ``specs`` against ``channels`` (names or URLs) and link the result into ``prefix``."""
        refuse_foreign(prefix)
        # conda-meta/ first: a run killed before rattler writes anything leaves an env the
        # next run resumes, not a "foreign" directory it must refuse.
        Path(prefix, "conda-meta").mkdir(parents=True, exist_ok=True)
        import asyncio  # here, not at import: `merlin-doctor check` must start fast

        asyncio.run(self._create(Path(prefix), list(channels), list(specs), progress or _ignore))

    async def _create(self, prefix: Path, channels: list[str], specs: list[str], progress: Progress) -> None:
        import rattler

        try:
            match_specs = [rattler.MatchSpec(spec) for spec in specs]  # conda's lenient syntax
        except Exception as exc:  # rattler raises its own InvalidMatchSpecError
            raise EngineError(f"invalid package spec: {exc}") from exc
        installed = _installed_records(prefix)
        progress(f"solving {len(specs)} specs with channels {', '.join(channels)}")
        try:
            records = await rattler.solve(
                sources=channels,
                specs=match_specs,
                gateway=rattler.Gateway(cache_dir=self.cache_dir / "repodata"),
                virtual_packages=rattler.VirtualPackage.detect(),
                locked_packages=installed,
                add_pip_as_python_dependency=True,  # conda's default: python brings pip
            )
        except Exception as exc:
            raise EngineError(f"rattler could not solve {' '.join(specs)}: {exc}") from exc
        solved = {record.name.normalized for record in records}
        keep = {record.name.normalized for record in installed} - solved
        try:
            await rattler.install(
                records,
                target_prefix=prefix,
                cache_dir=self.cache_dir / "pkgs",
                installed_packages=installed,
                ignored_packages=keep,
                reporter=_reporter(progress),
            )
        except Exception as exc:
            raise EngineError(f"rattler could not install into {prefix}: {exc}") from exc
        progress(f"environment ready at {prefix} ({len(records)} packages)")

    def installed(self, prefix: Path) -> dict[str, str]:
        return installed_packages(prefix)

    def envs_dir(self) -> Path:
        """Where conda or micromamba would look for a named env, with no conda to ask.

        In order: ``$CONDA_ENVS_PATH``/``$CONDA_ENVS_DIRS`` (conda's override); the
        ``envs/`` of the conda install named by ``$CONDA_EXE`` (set by conda's shell hook);
        ``$MAMBA_ROOT_PREFIX/envs`` (micromamba's); ``~/.conda/envs`` (in conda's default
        list, so ``conda activate NAME`` finds it later). ``$CONDA_PREFIX`` is not used: it
        is the active env, which may live anywhere.
        """
        for var in ("CONDA_ENVS_PATH", "CONDA_ENVS_DIRS"):
            listed = [d for d in os.environ.get(var, "").split(os.pathsep) if d]
            if listed:
                return Path(listed[0]).expanduser()
        candidates = []
        if os.environ.get("CONDA_EXE"):
            candidates.append(Path(os.environ["CONDA_EXE"]).parent.parent / "envs")
        if os.environ.get("MAMBA_ROOT_PREFIX"):
            candidates.append(Path(os.environ["MAMBA_ROOT_PREFIX"]) / "envs")
        candidates.append(Path.home() / ".conda" / "envs")
        return first_writable(candidates)


def _ignore(line: str) -> None:
    """The progress sink when the caller wants none."""


def _installed_records(prefix: Path) -> list[Any]:
    """The env's readable ``PrefixRecord``s; a torn record (killed run) is relinked, not fatal."""
    import rattler

    records = []
    for path in sorted((prefix / "conda-meta").glob("*.json")):
        try:
            records.append(rattler.PrefixRecord.from_path(path))
        except Exception:  # rattler raises its own parse errors
            continue
    return records


def _reporter(progress: Progress) -> Any:
    """An ``InstallerReporter`` turning rattler's callbacks into progress lines."""
    from rattler.install import InstallerReporter

    class SetupListener(InstallerReporter):
        def __init__(self) -> None:
            self.names: dict[int, str] = {}

        def on_transaction_start(self, total_operations: int) -> None:
            progress(f"installing: {total_operations} operations")

        def on_populate_cache_start(self, operation: int, package_name: str) -> int:
            self.names[operation] = package_name
            return operation

        def on_download_start(self, cache_entry: int) -> int:
            progress(f"downloading {self.names.get(cache_entry, '?')}")
            return cache_entry

        def on_link_start(self, operation: int, package_name: str) -> int:
            progress(f"linking {package_name}")
            return operation

    return SetupListener()
