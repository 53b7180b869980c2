"""Installed Python distributions, from metadata only: nothing is imported."""
from __future__ import annotations

import os
from importlib import metadata
from typing import Any, Dict, List

from packaging.utils import canonicalize_name

from merlin_doctor.probes import ProbeContext


def _top_level(dist: metadata.Distribution) -> List[str]:
    """Top-level import names a distribution installs (top_level.txt, else RECORD)."""
    text = dist.read_text("top_level.txt")
    if text is not None:
        return sorted({line.strip() for line in text.splitlines() if line.strip()})
    names = set()
    for path in dist.files or []:
        parts = path.parts
        if not parts or parts[0].endswith((".dist-info", ".egg-info", ".data")) or parts[0] in ("..", "__pycache__"):
            continue
        if len(parts) > 1:
            names.add(parts[0])
        elif parts[0].endswith((".py", ".so", ".pyd")):
            names.add(parts[0].split(".")[0])
    return sorted(names)


def _module_kind(location: str, name: str) -> str:
    """How `name` exists on disk: a module file, a regular package, or a namespace dir."""
    if os.path.isfile(os.path.join(location, name, "__init__.py")):
        return "package"
    if os.path.isfile(os.path.join(location, name + ".py")):
        return "module"
    return "namespace" if os.path.isdir(os.path.join(location, name)) else "other"


def _shared_modules(dists: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Top-level names that two or more distributions install, with what is on disk."""
    owners: Dict[str, List[str]] = {}
    for key, entry in dists.items():
        for name in entry["top_level"]:
            owners.setdefault(name, []).append(key)
    shared = {}
    for name, keys in owners.items():
        if len(keys) > 1:
            locations = sorted({dists[k]["location"] for k in keys})
            shared[name] = {"distributions": sorted(keys),
                            "kinds": sorted({_module_kind(loc, name) for loc in locations})}
    return shared


def probe(ctx: ProbeContext) -> Dict[str, Any]:
    dists: Dict[str, Dict[str, Any]] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        key = canonicalize_name(name)
        location = str(dist.locate_file(""))
        if key in dists:
            if dists[key]["location"] != location or dists[key]["version"] != dist.version:
                dists[key].setdefault("shadowed", []).append({"version": dist.version, "location": location})
            continue
        dists[key] = {
            "name": name,
            "version": dist.version,
            "requires": list(dist.requires or []),
            "top_level": _top_level(dist),
            "location": location,
        }
    return {"distributions": dists, "shared_modules": _shared_modules(dists)}
