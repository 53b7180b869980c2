"""The version of a CUDA library as the checks judge it, and where that version came from.

Shared by the cuda.* checks and gpu.driver (which judges the driver against the CUDA runtime
that will really load); it registers no check.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from packaging.utils import canonicalize_name

from merlin_doctor import knowledge


def stem(soname: str) -> str:
    return soname.split(".so", 1)[0]


def spec_for(key: str) -> Optional[Dict[str, Any]]:
    """The knowledge/cuda_libraries.yml row whose version the recipe's `expect.<key>` constrains."""
    return next((s for s in knowledge.load("cuda_libraries")["libraries"] if s.get("expect") == key), None)


def entry_for(cuda_libs: Dict[str, Any], soname: str) -> Optional[Dict[str, Any]]:
    """The facts about a library, matched by name stem: the snapshot may hold another major."""
    return next((e for e in cuda_libs.get("libraries", []) if stem(e["soname"]) == stem(soname)), None)


def reported_version(spec: Dict[str, Any], entry: Dict[str, Any]) -> Tuple[Optional[str], Optional[str]]:
    """(version, where it came from): the library's own call (the one TensorFlow makes), then
    the version of the package that installed it where that package versions this library,
    then its file name (`libcudnn.so.8.1.0`); (None, None) when none of them tells."""
    if entry.get("version"):
        return entry["version"], f"{spec['version']['call']}()"
    owner = entry.get("owner") or {}
    if owner.get("version") and canonicalize_name(owner.get("name") or "") in _packages(spec):
        return owner["version"], f"the {owner['kind']} package {owner['name']}"
    if entry.get("file_version"):
        return entry["file_version"], f"its file name {entry.get('realpath') or entry.get('path')}"
    return None, None


def _packages(spec: Dict[str, Any]) -> Tuple[str, ...]:
    """The packages whose version is this library's own (a cudatoolkit's is cuBLAS's CUDA, not
    cuBLAS's), by canonical name: pip's dist-info spells nvidia-cudnn-cu11 nvidia_cudnn_cu11."""
    return tuple(canonicalize_name(p) for p in spec["version"].get("package", ()))
