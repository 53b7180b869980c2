"""CUDA library checks: what TensorFlow will load, from where, at which version.

One check per library in knowledge/cuda_libraries.yml (`cuda.libcudart`, `cuda.libcudnn`,
...), registered from the table, plus `cuda.tensorrt` for the TensorRT pair.
"""

from __future__ import annotations

import os
import shlex
from typing import Any, Dict, List, Optional, Tuple

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from merlin_doctor import knowledge
from merlin_doctor.activation import activate_command
from merlin_doctor.checks import FactsView, check
from merlin_doctor.checks.libversion import entry_for, reported_version, stem
from merlin_doctor.recipe import Recipe, fix_command
from merlin_doctor.verdict import Finding, Status, failed, listed, passed, skipped, warned

TENSORRT = ("libnvinfer", "libnvinfer_plugin")


def _entry(facts, soname: str) -> Optional[Dict[str, Any]]:
    return entry_for(facts["cuda_libs"], soname)


def _tensorflow_label(recipe) -> str:
    """`TensorFlow 2.10`: the series the recipe pins, as summaries name it."""
    return f"TensorFlow {knowledge.tensorflow_series(recipe.expect.tensorflow) or ''}".rstrip()


def _env(facts) -> Dict[str, Any]:
    """The judged env (prefix, kind: conda | venv | system, activated, has_conda), from the probe."""
    return facts["cuda_libs"].get("env") or {
        "prefix": facts["cuda_libs"].get("prefix"),
        "kind": "conda",
        "activated": True,
        "has_conda": True,
    }


def _wheel_command(spec: Dict[str, Any], recipe) -> Optional[str]:
    """pip with the exact wheel for the library: the recipe's own pin, else what TensorFlow accepts."""
    pip = spec.get("pip")
    if not pip:
        return None
    pinned = recipe.install_command([pip])
    if pinned:
        return pinned
    key = spec.get("expect")
    wanted = recipe.expect.constraint(key) if key else None
    if key == "cudnn" and wanted:
        return f"python -m pip install {shlex.quote(pip + wanted)}"
    if key == "cuda_runtime" and wanted:
        return f"python -m pip install {shlex.quote(f'{pip}>={wanted}')}"
    return f"python -m pip install {pip}"


def _install(spec: Dict[str, Any], recipe, env: Dict[str, Any]) -> Tuple[str, str]:
    """The command that installs the library in the judged env, in that env's own terms, and the
    step that runs it ("": none): the image for a container recipe, conda in a conda env (the
    recipe's own package), pip with the exact wheel in a venv, and for system CUDA a statement."""
    if recipe.is_container:
        return (
            f"docker pull {recipe.image}  # the image ships this library; a missing one means a damaged or other image",
            "",
        )
    dep = recipe.conda_dependency(spec["conda"]) if spec.get("conda") else None
    wheel = _wheel_command(spec, recipe)
    if env.get("kind") == "conda" and dep:
        channel, _, pkg = dep.rpartition("::")
        return (
            f"conda install -c {shlex.quote(channel or (recipe.channels or ['conda-forge'])[0])} {shlex.quote(pkg)}",
            "env",
        )
    if env.get("kind") in ("venv", "conda") and wheel:
        return wheel, "pip" if recipe.install_command([spec["pip"]]) else ""
    return (
        f"# {spec['what']} comes from the system's CUDA installation here (no env): install the version "
        "TensorFlow needs from NVIDIA's packages, or build an env that carries it: "
        "merlin-doctor setup --recipe tf210-pip --prefix DIR",
        "",
    )


def _stray_conda(owner: Optional[Dict[str, Any]], spec: Dict[str, Any], recipe, env: Dict[str, Any]) -> Optional[str]:
    """The conda package that put a copy of this library in a conda env whose recipe takes it from a
    pip wheel instead (a cudnn left by the article's route): only `conda remove` ends the clash."""
    if not owner or owner.get("kind") != "conda" or env.get("kind") != "conda":
        return None
    from_pip = bool(spec.get("pip")) and bool(recipe.install_command([spec["pip"]]))
    return owner["name"] if from_pip and recipe.conda_dependency(owner["name"]) is None else None


def _not_on_path(dirs: List[str], recipe, env: Dict[str, Any]) -> Tuple[str, str]:
    """The fix for a library the env has but the loader cannot see: activate the env when it is
    not, rewrite its activation when the recipe's variables name the directory, else export it."""
    kind, prefix = env.get("kind"), env.get("prefix") or ""
    wanted = [
        recipe.expand(p, prefix) for v in recipe.activate if v.name == "LD_LIBRARY_PATH" for p in v.prepend + v.append
    ]
    if kind in ("venv", "conda") and dirs[0] in wanted:
        again = activate_command(kind, prefix, has_conda=env.get("has_conda", True))
        if not env.get("activated"):
            return f"{again}  # the env's activation puts {dirs[0]} on the loader path", ""
        return f"{fix_command(recipe, 'activation')} && {again}", "activation"
    return f"export LD_LIBRARY_PATH={shlex.quote(dirs[0])}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}", ""


def _owner(entry: Dict[str, Any]) -> str:
    owner = entry.get("owner")
    return f"{owner['kind']}:{owner['name']} {owner['version']}" if owner else "no package"


def _version_problem(spec: Dict[str, Any], version: Optional[str], recipe) -> Optional[str]:
    """Why the reported version is not what TensorFlow accepts, or None."""
    key = spec.get("expect")
    wanted = recipe.expect.constraint(key) if key else None
    if not wanted or not version or key == "tensorrt_soname":
        return None
    try:
        found = Version(version)
    except InvalidVersion:
        return f"reports an unreadable version {version!r}"
    if key == "cuda_runtime":
        need = Version(wanted)
        if found.major != need.major or found.minor < need.minor:
            return f"is CUDA {version}, but TensorFlow needs CUDA {need.major}.x with x >= {need.minor}"
        return None
    if not SpecifierSet(wanted).contains(found):
        return (
            f"is {version}, outside the recipe's {wanted} (TensorFlow needs the same major and a minor >= its build's)"
        )
    return None


def _shadowing(entry: Dict[str, Any], prefix: Optional[str]) -> Optional[str]:
    """The loaded copy comes from outside the env although the env has its own, or copies disagree."""
    path = entry.get("path") or ""
    on_path = [c for c in entry.get("copies", []) if c.get("on_search_path")]
    if prefix and not path.startswith(prefix.rstrip("/") + "/"):
        own = [c for c in entry.get("copies", []) if c["path"].startswith(prefix.rstrip("/") + "/")]
        if own:
            return f"is loaded from {path} although the env has its own at {own[0]['path']}"
    versions = {c["version"] for c in on_path if c.get("version")}
    if len(versions) > 1:
        listing = "; ".join(f"{c['path']} ({c['version']}, {_owner(c)})" for c in on_path)
        return f"has {len(on_path)} copies on the loader path with different versions: {listing}"
    return None


def _judge_library(spec: Dict[str, Any], facts, recipe) -> Finding:
    entry = _entry(facts, spec["soname"])
    if entry is None:
        return skipped(f"the snapshot has no facts about {spec['soname']}")
    soname = entry["soname"]
    env = _env(facts)
    evidence = {k: entry.get(k) for k in ("path", "realpath", "version", "owner", "error")}
    evidence["copies"] = [c["path"] for c in entry.get("copies", [])]
    install, step = _install(spec, recipe, env)
    stray = _stray_conda(entry.get("owner"), spec, recipe, env)
    if stray:
        install, step = f"conda remove {shlex.quote(stray)} && {install}", ""
    if entry.get("crashed") or entry.get("timed_out"):
        return failed(
            f"{soname} ({spec['what']}) is broken: {entry.get('error')}; TensorFlow would die or hang "
            "the same way when it loads it",
            fix=f"{install}  # reinstall it: the file is corrupt or built for another system",
            step=step,
            evidence=evidence,
        )
    if not entry.get("loaded"):
        others = entry.get("other_sonames", [])
        found = listed([f"{o['path']} ({_owner(o)})" for o in others], 3)
        extra = (
            (
                f"; found only {found}: another major, which {_tensorflow_label(recipe)} does not load (it opens "
                f"{soname})"
            )
            if others
            else ""
        )
        if entry.get("copies"):
            dirs = sorted({os.path.dirname(c["path"]) for c in entry["copies"]})
            fix, step = _not_on_path(dirs, recipe, env)
            return failed(
                f"{soname} ({spec['what']}) exists in {', '.join(dirs)} but is not on the loader path",
                fix=fix,
                step=step,
                evidence=evidence,
            )
        if not spec["required"]:
            if others:
                verb = "is" if len(others) == 1 else "are"
                return passed(
                    f"{soname} ({spec['what']}) is not found, but {found} {verb}: "
                    f"{_tensorflow_label(recipe)} opens {soname} (then the unversioned {stem(soname)}.so), "
                    "so only profiling misses it",
                    evidence=evidence,
                )
            return passed(f"{soname} ({spec['what']}) is not installed; only profiling needs it", evidence=evidence)
        return failed(
            f"{soname} ({spec['what']}) cannot be loaded: {entry.get('error')}{extra}",
            fix=install,
            step=step,
            evidence=evidence,
        )
    version, source = reported_version(spec, entry)
    evidence.update(version=version, version_source=source)
    problem = _version_problem(spec, version, recipe)
    if problem:
        return failed(
            f"{soname} {problem} (loaded from {entry.get('path')}, {_owner(entry)})",
            fix=install,
            step=step,
            evidence=evidence,
        )
    shadow = _shadowing(entry, facts["cuda_libs"].get("prefix"))
    if shadow:
        others = [c for c in entry.get("copies", []) if c.get("on_search_path") and c["path"] != entry.get("path")]
        strays = sorted({n for n in (_stray_conda(c.get("owner"), spec, recipe, env) for c in others) if n})
        remedy = (
            f"conda remove {' '.join(map(shlex.quote, strays))}  # the recipe takes {spec['what']} from pip"
            if strays
            else "Remove the stray directory from LD_LIBRARY_PATH so the env's copy wins "
            "(check ~/.bashrc and activate.d scripts)"
        )
        return Finding(Status.WARN, f"{soname} {shadow}", evidence, remedy, "")
    judged = spec.get("expect") not in (None, "tensorrt_soname")
    constraint = recipe.expect.constraint(spec["expect"]) if judged else None
    if version is None and constraint:
        return warned(
            f"{soname} loads from {entry.get('path')} ({_owner(entry)}) but its version cannot be read: no "
            f"{spec['version']['call']}(), no owning package that versions it, no version in its file name, "
            f"so the recipe's {constraint} cannot be confirmed",
            fix=f"{install}  # a copy that reports its version",
            step="",
            evidence=evidence,
        )
    called = source == f"{spec['version']['call']}()"
    told = f" (read from {source}: {spec['version']['call']}() is missing or failed)" if version and not called else ""
    return passed(
        f"{soname} {version or '(version unknown)'} from {entry.get('path')} ({_owner(entry)}){told}", evidence=evidence
    )


def _register(spec: Dict[str, Any]) -> None:
    def judge(facts: FactsView, recipe: Recipe) -> Finding:
        return _judge_library(spec, facts, recipe)

    judge.__doc__ = f"{spec['soname']} ({spec['what']}) loads from the env at a version TensorFlow accepts."
    check("cuda." + stem(spec["soname"]), probes=["cuda_libs"], gpu=True, step="pip" if spec["required"] else None)(
        judge
    )


for _spec in knowledge.load("cuda_libraries")["libraries"]:
    if stem(_spec["soname"]) not in TENSORRT:
        _register(_spec)


@check("cuda.tensorrt", probes=["cuda_libs"], step="links", gpu=True)
def tensorrt(facts: FactsView, recipe: Recipe) -> Finding:
    """libnvinfer / libnvinfer_plugin (TF-TRT) load at the soname TensorFlow opens; another major behind it is
    flagged unless the recipe intends it (expect.tensorrt)."""
    wanted = recipe.expect.tensorrt_soname
    if not wanted:
        return skipped(f"recipe {recipe.name} does not use TensorRT")
    entries = [e for e in (_entry(facts, s) for s in TENSORRT) if e]
    if not entries:
        return skipped("the snapshot has no TensorRT facts")
    missing = [e for e in entries if not e.get("loaded")]
    evidence = {e["soname"]: {k: e.get(k) for k in ("path", "realpath", "version", "error", "owner")} for e in entries}
    if missing:
        if missing[0].get("copies"):
            dirs = sorted({os.path.dirname(c["path"]) for c in missing[0]["copies"]})
            fix, step = _not_on_path(dirs, recipe, _env(facts))
            return failed(
                f"{missing[0]['soname']} exists in {', '.join(dirs)} but is not on the loader path",
                fix=fix,
                step=step,
                evidence=evidence,
            )
        other = [o for e in missing for o in e.get("other_sonames", [])]
        if other:
            return failed(
                f"{missing[0]['soname']} is missing while {other[0]['path']} (another TensorRT major) is "
                f"installed: TensorFlow only looks for .so.{wanted}, so TF-TRT is unavailable",
                evidence={**evidence, "other_tensorrt": [o["path"] for o in other]},
            )
        return skipped(
            f"TensorRT is not installed ({missing[0]['soname']} not found): TF-TRT inference conversion is "
            "unavailable; GPU training is unaffected",
            evidence=evidence,
        )
    major = [e for e in entries if (e.get("version") or "").split(".")[0] not in ("", str(wanted))]
    intended = recipe.expect.tensorrt
    if major and intended and all(_contains(intended, e.get("version")) for e in major):
        return passed(
            f"TensorRT {major[0]['version']} loads behind the .so.{wanted} name TensorFlow opens, as recipe "
            f"{recipe.name} intends (TensorRT {intended}; TensorFlow was built against {wanted}.x)",
            evidence=evidence,
        )
    if major:  # nothing a step can change: said, with no fix to run
        return Finding(
            Status.WARN,
            f"{major[0]['soname']} is TensorRT {major[0]['version']} "
            f"({major[0].get('realpath')}) behind a .so.{wanted} name: the load warning is silenced, but "
            f"TensorFlow was built against TensorRT {wanted}.x, so TF-TRT conversion is not supported with "
            "it (GPU training is unaffected)",
            evidence,
            None,
            "",
        )
    return passed(
        f"TensorRT {entries[0].get('version')} loads as {_tensorflow_label(recipe)} expects (.so.{wanted})",
        evidence=evidence,
    )


def _contains(specifier: str, version: Optional[str]) -> bool:
    try:
        return version is not None and SpecifierSet(specifier).contains(Version(version))
    except InvalidVersion:
        return False
