"""Every CUDA library TensorFlow will dlopen, loaded the way TensorFlow loads it.

Runs isolated, in a child started with the LD_LIBRARY_PATH the activated env will have
(`child_env`), so the answer is what TensorFlow will get after `conda activate`, not what
this shell happens to have. For each library: loaded or the loader's own error, the path
the loader chose and the real file behind it, the version the library itself reports,
the conda package or pip distribution that owns it, and every other copy around.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import json
import os
import re
import shutil
import subprocess
import sys
from typing import Any, Dict, List, Optional

from merlin_doctor.envstate import env_kind
from merlin_doctor.probes.context import ProbeContext
from merlin_doctor.probes.isolate import call_in_fork

RTLD_DI_LINKMAP = 2


class _LinkMap(ctypes.Structure):
    _fields_ = [("l_addr", ctypes.c_void_p), ("l_name", ctypes.c_char_p)]


def loaded_path(lib: ctypes.CDLL) -> Optional[str]:
    """The path the dynamic loader opened for a handle (dlinfo RTLD_DI_LINKMAP)."""
    try:
        libdl = ctypes.CDLL("libdl.so.2")
        lmap = ctypes.POINTER(_LinkMap)()
        if libdl.dlinfo(ctypes.c_void_p(lib._handle), RTLD_DI_LINKMAP, ctypes.byref(lmap)) == 0 and lmap:
            name = lmap.contents.l_name
            return os.path.abspath(name.decode()) if name else None
    except (OSError, AttributeError, ValueError):
        pass
    return None


def judged_env(ctx: ProbeContext) -> Dict[str, Any]:
    """The env whose files are searched and owners named: the judged one (named or activated),
    else the one this Python runs from, so a venv used without activation still has its wheels'
    libraries found. `kind`: conda (conda-meta/), venv (pyvenv.cfg) or system; `activated`: an
    env was named or activated, so the search path is as its activation leaves it."""
    active = ctx.judged_prefix()
    prefix = os.path.abspath(active or sys.prefix)
    has_conda = bool(
        ctx.env.get("CONDA_EXE")
        or ctx.env.get("MAMBA_EXE")
        or any(shutil.which(exe, path=ctx.env.get("PATH", "")) for exe in ("conda", "mamba", "micromamba"))
    )
    return {"prefix": prefix, "kind": env_kind(prefix) or "system", "activated": bool(active), "has_conda": has_conda}


def search_path(ctx: ProbeContext) -> List[str]:
    """LD_LIBRARY_PATH's entries as activating the judged env leaves them (activated.py)."""
    activated = ctx.activated()
    if activated is None:
        return [p for p in ctx.env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    return activated.library_path(ctx.env)


def child_env(ctx: ProbeContext) -> Dict[str, str]:
    """This environment, with LD_LIBRARY_PATH as activation leaves it (unchanged if it is already so)."""
    wanted = os.pathsep.join(search_path(ctx))
    if wanted == ctx.env.get("LD_LIBRARY_PATH", ""):
        return ctx.env
    return dict(ctx.env, LD_LIBRARY_PATH=wanted)


# --- version calls, as the table in knowledge/cuda_libraries.yml describes them -----------


def _version(lib: ctypes.CDLL, call: str, style: str) -> Optional[str]:
    try:
        fn = getattr(lib, call)
    except AttributeError:
        return None
    value = ctypes.c_int()
    if style == "runtime":
        if fn(ctypes.byref(value)) != 0:
            return None
        return f"{value.value // 1000}.{value.value % 1000 // 10}"
    if style == "property":
        parts = []
        for kind in (0, 1, 2):  # MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
            if fn(kind, ctypes.byref(value)) != 0:
                return None
            parts.append(str(value.value))
        return ".".join(parts)
    if style == "return_m1000":
        fn.restype = ctypes.c_int
        v = fn()
        return f"{v // 1000}.{v % 1000 // 100}.{v % 100}"
    if style == "out_int":
        if fn(ctypes.byref(value)) != 0:
            return None
        return str(value.value)
    raise ValueError(f"unknown version style {style!r}")


# --- who owns a file -----------------------------------------------------------------------


class _Owners:
    """Maps files to the conda package or pip distribution that installed them (lazily)."""

    def __init__(self, prefix: Optional[str]):
        self.prefix = prefix
        self._conda: Optional[Dict[str, Dict[str, str]]] = None

    def _conda_map(self) -> Dict[str, Dict[str, str]]:
        if self._conda is None:
            self._conda = {}
            for meta in glob.glob(os.path.join(self.prefix or "/nonexistent", "conda-meta", "*.json")):
                try:
                    with open(meta, encoding="utf-8") as fh:
                        record = json.load(fh)
                except (OSError, ValueError):
                    continue
                owner = {
                    "kind": "conda",
                    "name": record.get("name", "?"),
                    "version": record.get("version", "?"),
                    "channel": str(record.get("channel", "")),
                }
                for rel in record.get("files", []):
                    if ".so" in rel:
                        self._conda[os.path.join(str(self.prefix), rel)] = owner
        return self._conda

    def _pip(self, path: str) -> Optional[Dict[str, str]]:
        site = path.split("/site-packages/", 1)
        if len(site) != 2:
            return None
        root, rel = site[0] + "/site-packages", site[1]
        for record in glob.glob(os.path.join(root, "*.dist-info", "RECORD")):
            dist = os.path.basename(os.path.dirname(record))[: -len(".dist-info")]
            if dist.startswith("tensorflow"):
                continue  # the largest RECORD there is, and it ships no CUDA library
            try:
                with open(record, encoding="utf-8") as fh:
                    if any(line.startswith(rel + ",") for line in fh):
                        name, _, version = dist.partition("-")
                        # dist-info folders spell names with "_": say it as pip does (nvidia-cudnn-cu11)
                        return {"kind": "pip", "name": re.sub(r"[-_.]+", "-", name).lower(), "version": version}
            except OSError:
                continue
        return None

    def owner(self, path: str) -> Optional[Dict[str, str]]:
        return self._conda_map().get(path) or self._pip(path)


def _filename_version(real: str, soname: str) -> Optional[str]:
    """`libcublas.so.11.4.1.1043` → `11.4.1.1043`; nothing when the file is the soname itself."""
    base = os.path.basename(real)
    stem = soname.split(".so", 1)[0] + ".so."
    return base[len(stem) :] if base.startswith(stem) and base != soname else None


def _scan_dirs(ctx: ProbeContext, prefix: str, path: List[str], table: Dict[str, List[str]]) -> List[str]:
    """Directories where copies of the libraries could live: the search path, the judged env
    (conda's lib/, the wheels' site-packages/nvidia/*/lib and tensorrt/), the system."""
    dirs = list(path)
    if prefix:
        site = glob.glob(os.path.join(prefix, "lib", "python3*", "site-packages"))
        for pattern in table["env"]:
            for s in site or [os.path.join(prefix, "lib", "python3", "site-packages")]:
                dirs += glob.glob(os.path.join(prefix, pattern.replace("{site_packages}", s)))
    for pattern in table["system"]:
        dirs += sorted(glob.glob(ctx.host_path(pattern)))
    seen: List[str] = []
    for d in dirs:
        d = os.path.abspath(d)
        if d not in seen and os.path.isdir(d):
            seen.append(d)
    return seen


def _ld_cache(ctx: ProbeContext) -> Dict[str, List[str]]:
    """soname → paths from /etc/ld.so.cache (`ldconfig -p`); only on the real root."""
    return ld_cache() if ctx.root == "/" else {}


#: Where glibc looks last, after LD_LIBRARY_PATH and /etc/ld.so.cache.
DEFAULT_LIB_DIRS = ("/lib64", "/usr/lib64", "/lib", "/usr/lib")


def locate(soname: str) -> Optional[str]:
    """The file the dynamic loader would open for `soname`, found without loading it (its
    constructor may crash or exit): this process's LD_LIBRARY_PATH, ld.so.cache, the default
    directories. It names a library that misbehaves when loaded."""
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d]
    candidates = [os.path.join(d, soname) for d in dirs]
    candidates += ld_cache().get(soname, [])
    candidates += [os.path.join(d, soname) for d in DEFAULT_LIB_DIRS]
    return next((os.path.abspath(c) for c in candidates if os.path.isfile(c)), None)


def ld_cache() -> Dict[str, List[str]]:
    """soname → paths from this machine's /etc/ld.so.cache (`ldconfig -p`)."""
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    cache: Dict[str, List[str]] = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) \(.*\) => (\S+)", line)
        if m:
            cache.setdefault(m.group(1), []).append(m.group(2))
    return cache


def _copies(
    soname: str, listing: Dict[str, List[str]], ld_cache: Dict[str, List[str]], path: List[str], owners: _Owners
) -> Dict[str, List[Dict[str, Any]]]:
    """Files named like this soname (copies) and like its other majors (e.g. libcublas.so.12)."""
    stem = soname.split(".so", 1)[0] + ".so."
    copies, others = [], []
    candidates = [os.path.join(d, n) for d, names in listing.items() for n in names if n.startswith(stem)]
    candidates += [p for name, paths in ld_cache.items() if name.startswith(stem) for p in paths]
    seen = set()
    for file in candidates:
        if file in seen or not os.path.exists(file):
            continue
        seen.add(file)
        name = os.path.basename(file)
        real = os.path.realpath(file)
        owner = owners.owner(real) or owners.owner(file)
        entry = {
            "path": file,
            "realpath": real,
            "on_search_path": os.path.dirname(file) in path,
            "version": _filename_version(real, soname) or (owner or {}).get("version"),
            "owner": owner,
        }
        if name == soname:
            copies.append(entry)
        elif re.fullmatch(re.escape(stem) + r"\d+(\.\d+)?", name) and not name.startswith(soname + "."):
            others.append(dict(entry, soname=name))
    return {"copies": copies, "other_sonames": others}


def _load(spec: Dict[str, Any]) -> Dict[str, Any]:
    """dlopen one library as TensorFlow does and ask it its version."""
    try:
        lib = ctypes.CDLL(spec["soname"])
    except OSError as exc:
        return {"loaded": False, "error": str(exc)}
    opened = loaded_path(lib)
    return {
        "loaded": True,
        "path": opened,
        "realpath": os.path.realpath(opened) if opened else None,
        "version": _version(lib, spec["version"]["call"], spec["version"]["style"]),
    }


def _load_all(specs: List[Dict[str, Any]], timeout: float) -> List[Dict[str, Any]]:
    """Load every library in one fork, as TensorFlow loads them into one process; when that
    fork crashes or hangs, load each in a fork of its own to name the library at fault."""
    together = call_in_fork(lambda: {"loaded": [_load(spec) for spec in specs]}, timeout / 2)
    if isinstance(together.get("loaded"), list):
        return together["loaded"]
    per_library = max(1.0, timeout / 2 / len(specs))
    results = []
    for spec in specs:
        loaded = call_in_fork(functools.partial(_load, spec), per_library)
        if "loaded" not in loaded:
            loaded = _misbehaved(spec["soname"], loaded)
        results.append(loaded)
    return results


def _misbehaved(soname: str, outcome: Dict[str, Any]) -> Dict[str, Any]:
    """A load that crashed, hung or ended the process (a constructor calling exit): the file
    the loader picked is named, so the verdict blames the library, not the loader path."""
    path = locate(soname)
    what = path or soname
    if outcome.get("timed_out"):
        error = f"loading {what} hung ({outcome.get('error')})"
    elif outcome.get("crashed"):
        error = f"loading {what} killed the process with {outcome.get('signal')}"
    else:
        error = f"loading {what} ended the process before dlopen returned ({outcome.get('error')})"
    return {
        "loaded": False,
        "path": path,
        "realpath": os.path.realpath(path) if path else None,
        "error": error,
        "crashed": not outcome.get("timed_out"),
        "timed_out": bool(outcome.get("timed_out")),
        "signal": outcome.get("signal"),
    }


def library_specs(tensorrt_soname: Optional[str], tensorflow: Optional[str] = None) -> List[Dict[str, Any]]:
    """The table's libraries, with TensorRT's soname major as the recipe (or its TF build) expects it."""
    from merlin_doctor import knowledge

    major = tensorrt_soname or knowledge.tensorflow_build(tensorflow)["tensorrt_soname"]
    return [
        dict(spec, soname=spec["soname"].replace("{tensorrt_soname}", str(major)))
        for spec in knowledge.load("cuda_libraries")["libraries"]
    ]


def child_options(ctx: ProbeContext) -> Dict[str, Any]:
    """Prepared in the parent: the libraries to load and where to look for copies."""
    from merlin_doctor import knowledge
    from merlin_doctor.recipe import Expect

    recipe = ctx.recipe() if ctx.recipe_path else None
    expect = recipe.expect if recipe else Expect()
    return {
        "libraries": library_specs(expect.tensorrt_soname, expect.tensorflow),
        "search": knowledge.load("cuda_libraries")["search"],
    }


def probe(ctx: ProbeContext) -> Dict[str, Any]:
    prepared = ctx.options.get("cuda_libs") or child_options(ctx)
    path = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    env = judged_env(ctx)
    owners = _Owners(env["prefix"])
    dirs = _scan_dirs(ctx, env["prefix"], path, prepared["search"])
    listing = {d: sorted(os.listdir(d)) for d in dirs}
    ld_cache = _ld_cache(ctx)
    specs = prepared["libraries"]
    libraries = []
    for spec, loaded in zip(specs, _load_all(specs, ctx.timeout)):
        entry: Dict[str, Any] = {"soname": spec["soname"], "required": spec["required"]}
        entry.update(loaded)
        if entry.get("loaded"):
            entry["owner"] = owners.owner(entry["realpath"]) or owners.owner(entry["path"])
            entry["file_version"] = _filename_version(entry["realpath"] or "", spec["soname"])
        entry.update(_copies(spec["soname"], listing, ld_cache, path, owners))
        libraries.append(entry)
    return {
        "search_path": path,
        "prefix": ctx.judged_prefix(),
        "env": env,
        "scanned_dirs": dirs,
        "libraries": libraries,
    }
