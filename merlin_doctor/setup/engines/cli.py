"""conda, mamba and micromamba, driven through their command lines.

The three accept the same words for what we need (``--yes --prefix --override-channels
--channel``), so one class serves them. ``--override-channels`` keeps the user's
``.condarc`` channels (often ``defaults``) out of the solve: the recipe's channels are
the whole truth. A fresh prefix gets ``create``; an existing env gets ``install``,
because ``create --yes`` on an existing env deletes it first.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from merlin_doctor.setup.engines.base import (
    EngineError,
    Progress,
    first_writable,
    installed_packages,
    prefix_state,
    refuse_foreign,
)

# Where a shell hook leaves the executable when it is a shell function, not on PATH.
EXE_ENV_VARS = {"conda": "CONDA_EXE", "mamba": "MAMBA_EXE", "micromamba": "MAMBA_EXE"}
ERROR_TAIL_LINES = 20


def find_executable(name: str) -> str | None:
    """``name`` on PATH, else the ``$CONDA_EXE``/``$MAMBA_EXE`` the shell hook set, if it is ``name``."""
    found = shutil.which(name)
    if found:
        return found
    hinted = os.environ.get(EXE_ENV_VARS[name], "")
    if os.path.basename(hinted) == name and os.path.isfile(hinted) and os.access(hinted, os.X_OK):
        return hinted
    return None


class CliEngine:
    """One of conda / mamba / micromamba; ``exe`` is found on PATH unless given."""

    def __init__(self, name: str, exe: str | None = None) -> None:
        if name not in EXE_ENV_VARS:
            raise ValueError(f"unknown CLI engine {name!r}; expected one of {', '.join(EXE_ENV_VARS)}")
        self.name = name
        self.exe = exe if exe is not None else find_executable(name)
        self._envs_dir: Path | None = None

    def available(self) -> bool:
        return self.exe is not None

    def missing_reason(self) -> str:
        return f"{self.name}: not on PATH and ${EXE_ENV_VARS[self.name]} does not name it"

    def create_command(self, prefix: Path, channels: Sequence[str], specs: Sequence[str]) -> list[str]:
        verb = "install" if prefix_state(prefix) == "env" else "create"
        cmd = [self.exe or self.name, verb, "--yes", "--prefix", os.path.abspath(prefix)]
        if channels:
            cmd.append("--override-channels")
            for channel in channels:
                cmd += ["--channel", channel]
        return cmd + list(specs)

    def create(
        self,
        prefix: Path,
        channels: Sequence[str],
        specs: Sequence[str],
        progress: Progress | None = None,
    ) -> None:
        """Run ``create_command``, streaming its output lines to ``progress``."""
        if refuse_foreign(prefix) == "empty":
            os.rmdir(prefix)  # older micromamba refuses any existing folder; it holds nothing
        cmd = self.create_command(prefix, channels, specs)
        tail: collections.deque = collections.deque(maxlen=ERROR_TAIL_LINES)
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        except OSError as exc:
            raise EngineError(f"could not run {self.name} ({cmd[0]}): {exc}") from exc
        with proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip()
                tail.append(line)
                if progress is not None and line:
                    progress(line)
        if proc.returncode != 0:
            raise EngineError(
                f"{self.name} {cmd[1]} exited with status {proc.returncode}; last output:\n" + "\n".join(tail)
            )

    def installed(self, prefix: Path) -> dict[str, str]:
        return installed_packages(prefix)

    def envs_dir(self) -> Path:
        """The engine's own answer: the first writable entry of ``<exe> info --json``'s envs dirs."""
        if self._envs_dir is None:
            self._envs_dir = first_writable(self._info_envs_dirs())
        return self._envs_dir

    def _info_envs_dirs(self) -> list[Path]:
        cmd = [self.exe or self.name, "info", "--json"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            info = json.loads(done.stdout)
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            raise EngineError(f"could not ask {self.name} for its envs directories: {exc}") from exc
        # conda and mamba 1 say "envs_dirs"; micromamba and mamba 2 say "envs directories".
        dirs = info.get("envs_dirs") or info.get("envs directories")
        if not dirs:
            raise EngineError(f"`{' '.join(cmd)}` reported no envs directories")
        return [Path(d) for d in dirs]
