"""Installed Python distributions, from metadata only: nothing is imported."""
from __future__ import annotations

import os
from importlib import metadata
from typing import Any, Dict, List

from packaging.utils import canonicalize_name

from merlin_doctor.probes import ProbeContext


def _top_level(dist: metadata.Distribution) -> List[str]:
    """Top-level import names a distribution installs (top_level.txt, else its RECORD)."""
    text = dist.read_text("top_level.txt")
    if text is not None:
        return sorted({line.strip() for line in text.splitlines() if line.strip()})
    names = set()
    for line in (dist.read_text("RECORD") or "").splitlines():
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


def _headers(dist: metadata.Distribution) -> Dict[str, List[str]]:
    """Name, Version and Requires-Dist from the metadata's header block.

    `Distribution.metadata` runs the e-mail parser over the whole file on every access,
    which alone took most of `check --fast` in an env holding TensorFlow and Merlin.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    fields: Dict[str, List[str]] = {}
    for line in text.splitlines():
        if not line:
            break
        key, sep, value = line.partition(":")
        if sep and key in ("Name", "Version", "Requires-Dist"):
            fields.setdefault(key, []).append(value.strip())
    return fields


def probe(ctx: ProbeContext) -> Dict[str, Any]:
    dists: Dict[str, Dict[str, Any]] = {}
    for dist in metadata.distributions():
        fields = _headers(dist)
        if not fields.get("Name") or not fields.get("Version"):
            continue
        name, version = fields["Name"][0], fields["Version"][0]
        key = canonicalize_name(name)
        location = str(dist.locate_file(""))
        if key in dists:
            if dists[key]["location"] != location or dists[key]["version"] != version:
                dists[key].setdefault("shadowed", []).append({"version": version, "location": location})
            continue
        dists[key] = {
            "name": name,
            "version": version,
            "requires": fields.get("Requires-Dist", []),
            "top_level": _top_level(dist),
            "location": location,
        }
    return {"distributions": dists, "shared_modules": _shared_modules(dists)}
