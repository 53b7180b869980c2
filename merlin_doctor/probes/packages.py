"""Installed Python distributions, from metadata only: nothing is imported."""

from __future__ import annotations

import os
import platform
import re
from typing import Any, Dict, List, Optional, Set

from merlin_doctor.probes.context import ProbeContext
from merlin_doctor.sitepath import metadata_dirs


def canonicalize_name(name: str) -> str:
    """PEP 503's normalized name (as packaging.utils has it): this probe runs in the judged
    env's Python, which may not have `packaging`, so it needs the standard library only."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _read(directory: str, name: str) -> Optional[str]:
    try:
        with open(os.path.join(directory, name), encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def _top_level(info_dir: str) -> List[str]:
    """Top-level import names a distribution installs (top_level.txt, else its RECORD)."""
    text = _read(info_dir, "top_level.txt")
    if text is not None:
        return sorted({line.strip() for line in text.splitlines() if line.strip()})
    names = set()
    for line in (_read(info_dir, "RECORD") or "").splitlines():
        path = line.split(",", 1)[0]
        first, sep, _ = path.partition("/")
        if not first or first.endswith((".dist-info", ".egg-info", ".data")) or first in ("..", "__pycache__"):
            continue
        if sep:
            names.add(first)
        elif first.endswith((".py", ".so", ".pyd")):
            names.add(first.split(".")[0])
    return sorted(names)


def _module_kind(location: str, name: str) -> str:
    """How `name` exists on disk: a module file, a regular package, or a namespace dir."""
    if os.path.isfile(os.path.join(location, name, "__init__.py")):
        return "package"
    if os.path.isfile(os.path.join(location, name + ".py")):
        return "module"
    return "namespace" if os.path.isdir(os.path.join(location, name)) else "other"


def _files_under(info_dir: str, name: str) -> List[str]:
    """What a distribution's RECORD installs as the top-level `name`: `name.py`, `name/...`."""
    out = []
    for line in (_read(info_dir, "RECORD") or "").splitlines():
        path = line.split(",", 1)[0]
        if (path.startswith(name + "/") or path.split(".", 1)[0] == name) and "__pycache__" not in path:
            out.append(path)
    return out


def _overlap(files: Dict[str, List[str]], name: str) -> Dict[str, Any]:
    """How distributions share a top-level name, from their RECORDs: `clashing` files that two of
    them install (the `name/__init__.py` a namespace's wheels each carry excepted), and whether
    one installs `name` as a module file while another installs it as a directory."""
    seen: Dict[str, str] = {}
    clashing = []
    shapes: Set[str] = set()
    for key, paths in sorted(files.items()):
        shapes.update("dir" if p.startswith(name + "/") else "file" for p in paths)
        for path in paths:
            if path in seen and path != f"{name}/__init__.py":
                clashing.append(path)
            seen.setdefault(path, key)
    return {"clashing_files": sorted(set(clashing))[:10], "file_and_dir": shapes == {"dir", "file"}}


def _shared_modules(dists: Dict[str, Dict[str, Any]], info_dirs: Dict[str, str]) -> Dict[str, Dict[str, Any]]:
    """Top-level names that two or more distributions install, with what is on disk and
    which files they really share (NVIDIA's wheels all install under one `nvidia/` namespace)."""
    owners: Dict[str, List[str]] = {}
    for key, entry in dists.items():
        for name in entry["top_level"]:
            owners.setdefault(name, []).append(key)
    shared = {}
    for name, keys in owners.items():
        if len(keys) > 1:
            locations = sorted({dists[k]["location"] for k in keys})
            shared[name] = {
                "distributions": sorted(keys),
                "kinds": sorted({_module_kind(loc, name) for loc in locations}),
                **_overlap({k: _files_under(info_dirs[k], name) for k in keys}, name),
            }
    return shared


def _headers(info_dir: str) -> Dict[str, List[str]]:
    """Name, Version and Requires-Dist from the metadata's header block.

    Read directly: `importlib.metadata` runs the e-mail parser over the whole file on
    every access, which alone took most of `check --fast` in an env holding TensorFlow.
    """
    is_egg = info_dir.endswith(".egg-info")
    text = _read(info_dir, "PKG-INFO" if is_egg else "METADATA") or ""
    fields: Dict[str, List[str]] = {}
    for line in text.splitlines():
        if not line:
            break
        key, sep, value = line.partition(":")
        if sep and key in ("Name", "Version", "Requires-Dist"):
            fields.setdefault(key, []).append(value.strip())
    if is_egg:  # egg-info keeps requirements in requires.txt, unconditional ones before any [section]
        requires = (_read(info_dir, "requires.txt") or "").split("\n[", 1)[0]
        fields["Requires-Dist"] = [r.strip() for r in requires.splitlines() if r.strip()]
    return fields


def probe(ctx: ProbeContext) -> Dict[str, Any]:
    dists: Dict[str, Dict[str, Any]] = {}
    info_dirs: Dict[str, str] = {}
    for location, info_dir in metadata_dirs():
        fields = _headers(info_dir)
        if not fields.get("Name") or not fields.get("Version"):
            continue
        name, version = fields["Name"][0], fields["Version"][0]
        key = canonicalize_name(name)
        location = os.path.abspath(location)
        if key in dists:
            if dists[key]["location"] != location or dists[key]["version"] != version:
                dists[key].setdefault("shadowed", []).append({"version": version, "location": location})
            continue
        info_dirs[key] = info_dir
        dists[key] = {
            "name": name,
            "version": version,
            "requires": fields.get("Requires-Dist", []),
            "top_level": _top_level(info_dir),
            "location": location,
        }
    return {
        "distributions": dists,
        "shared_modules": _shared_modules(dists, info_dirs),
        "python_version": platform.python_version(),
    }  # markers are evaluated for this Python
