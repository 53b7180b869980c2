"""State of an env that the checks, the probes and the steps all read, computed one way.

The recipe's links and copies as they are in the env (read by the `recipe_files` probe
and by the `links`/`copies` steps), and whether a requirement is met by what is installed
(judged by `packages.required` and by the `pip` step, markers evaluated for the env's
Python). A check built on these and the step that repairs it can never disagree.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from merlin_doctor.contained import is_inside, open_regular, where_outside
from merlin_doctor.recipe import Recipe

#: Link states that need no work: the link is right, or its target is absent so none can be made.
SETTLED_LINKS = ("ok", "no-target")
CHUNK = 1 << 20


def env_kind(prefix: str) -> Optional[str]:
    """`conda` (it has conda-meta/), `venv` (it has pyvenv.cfg), or None: not an env at all."""
    if os.path.isdir(os.path.join(prefix, "conda-meta")):
        return "conda"
    return "venv" if os.path.isfile(os.path.join(prefix, "pyvenv.cfg")) else None


def venv_home() -> Path:
    """Where named venvs live (virtualenvwrapper's convention): $WORKON_HOME, else ~/.virtualenvs."""
    return Path(os.environ.get("WORKON_HOME") or os.path.expanduser("~/.virtualenvs"))


def sha256(path: Path) -> Optional[str]:
    """The file's sha256, or None when it is not a readable regular file (a FIFO is never read)."""
    digest = hashlib.sha256()
    try:
        with open_regular(str(path)) as fh:
            if fh is None:
                return None
            for block in iter(lambda: fh.read(CHUNK), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def link_states(recipe: Recipe, prefix: str) -> List[Dict[str, Any]]:
    """Each recipe link in the env at `prefix`: its path, target and state.

    States: `ok`, `no-target` (nothing to link to), `missing`, `elsewhere` (a symlink to
    something else), `file` (a real file or directory in the way), `outside` (its directory
    resolves out of the env through a symlink; `why` says where: never made, even with --force).
    """
    out = []
    for link in recipe.links:
        directory = recipe.expand(link.dir, prefix)
        path = os.path.join(directory, link.name)
        target = os.path.join(directory, link.target)
        target_exists = os.path.exists(target)
        outside = where_outside(prefix, path)
        if outside:
            out.append({"path": path, "target": link.target, "state": "outside", "points_to": None, "why": outside})
            continue
        if os.path.islink(path):
            right = os.readlink(path) == link.target or (
                target_exists and os.path.realpath(path) == os.path.realpath(target)
            )
            state = "ok" if right else "elsewhere"
        elif os.path.lexists(path):
            state = "file"
        else:
            state = "missing" if target_exists else "no-target"
        out.append(
            {
                "path": path,
                "target": link.target,
                "state": state,
                "points_to": os.readlink(path) if state == "elsewhere" else None,
            }
        )
    return out


def _copy_outside(prefix: str, src: Path, dst: Path) -> Optional[str]:
    """Why a copy would read or write outside the env (after symlinks), or None."""
    if not is_inside(prefix, str(src)):
        return f"{src} resolves to {os.path.realpath(src)}, outside the env {prefix}"
    return where_outside(prefix, str(dst))


def _copy_state(src_hash: Optional[str], dst: Path, dst_hash: Optional[str]) -> str:
    if src_hash is None:
        return "no-source"
    if dst_hash is None:
        return "differs" if os.path.lexists(dst) else "missing"  # something that is not a file is in the way
    return "ok" if dst_hash == src_hash else "differs"


def copy_states(recipe: Recipe, prefix: str) -> List[Dict[str, Any]]:
    """Each copy: source, destination, both hashes and a state (`ok`, `missing`, `differs`,
    `no-source`, or `outside` with `why`: never read, never written, even with --force)."""
    out = []
    for copy in recipe.copies:
        src, dst = Path(recipe.expand(copy.src, prefix)), Path(recipe.expand(copy.dst, prefix))
        why = _copy_outside(prefix, src, dst)
        if why:
            out.append(
                {
                    "from": str(src),
                    "to": str(dst),
                    "from_sha256": None,
                    "to_sha256": None,
                    "state": "outside",
                    "why": why,
                }
            )
            continue
        src_hash, dst_hash = sha256(src), sha256(dst)
        out.append(
            {
                "from": str(src),
                "to": str(dst),
                "from_sha256": src_hash,
                "to_sha256": dst_hash,
                "state": _copy_state(src_hash, dst, dst_hash),
            }
        )
    return out


def applies(req: Requirement, python_version: Optional[str]) -> bool:
    """A requirement's marker evaluated for the env's Python (not the doctor's, when it is known)."""
    if req.marker is None:
        return True
    env = {key: str(value) for key, value in default_environment().items()}
    env["extra"] = ""
    if python_version:
        env.update(python_version=".".join(python_version.split(".")[:2]), python_full_version=python_version)
    return req.marker.evaluate(env)


def unmet(
    requirements: List[str], installed: Dict[str, str], python_version: Optional[str]
) -> List[Tuple[Requirement, Optional[str]]]:
    """The requirements (that apply to this Python) which `installed` ({canonical name: version})
    does not satisfy, each with the version found (None: not installed)."""
    missing = []
    for text in requirements:
        req = Requirement(text)
        if not applies(req, python_version):
            continue
        version = installed.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            missing.append((req, version))
    return missing
