"""What the installed TensorFlow was built against, read from its build_info.py (no import)."""

from __future__ import annotations

import ast
import glob
import os
import re
import sys
from typing import Any, Dict, List, Optional

from merlin_doctor.probes.context import ProbeContext

BUILD_INFO = os.path.join("tensorflow", "python", "platform", "build_info.py")


def _candidates(ctx: ProbeContext) -> List[str]:
    """The running interpreter's sys.path first, then the active env's site-packages."""
    paths = [os.path.join(p, BUILD_INFO) for p in sys.path if p]
    prefix = ctx.env.get("CONDA_PREFIX")
    if prefix:
        paths += glob.glob(os.path.join(prefix, "lib", "python3*", "site-packages", BUILD_INFO))
    return paths


def _literal(node: ast.AST) -> Any:
    """A literal, also inside `collections.OrderedDict([...])` as TensorFlow writes it."""
    if (
        isinstance(node, ast.Call)
        and node.args
        and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("OrderedDict", "dict")
    ):
        return dict(ast.literal_eval(node.args[0]))
    return ast.literal_eval(node)


def _build_info(text: str) -> Dict[str, Any]:
    """The `build_info` mapping, or the older module-level constants."""
    info: Dict[str, Any] = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                value = _literal(node.value)
            except (ValueError, TypeError):
                continue
            if node.targets[0].id == "build_info" and isinstance(value, dict):
                info.update(value)
            elif isinstance(value, (str, bool, int)):
                info.setdefault(node.targets[0].id, value)
    return info


def _version(site_packages: str) -> Optional[str]:
    for entry in os.listdir(site_packages):
        m = re.fullmatch(r"tensorflow(?:[_-](?:cpu|gpu|intel))?-(\d[^-]*)\.dist-info", entry)
        if m:
            return m.group(1)
    return None


def probe(ctx: ProbeContext) -> Dict[str, Any]:
    for path in _candidates(ctx):
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                info = _build_info(fh.read())
            site_packages = path[: -len(BUILD_INFO) - 1]
            return {"found": True, "path": path, "version": _version(site_packages), "build_info": info}
    return {"found": False, "error": "no tensorflow/python/platform/build_info.py on sys.path or in the active env"}
