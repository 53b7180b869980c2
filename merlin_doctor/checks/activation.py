"""Activation checks: the env's activate.d/deactivate.d scripts, and the live variables."""

from __future__ import annotations

import os
import re
import shlex
from typing import Any, Dict, List, Optional, Set

from packaging.version import Version

from merlin_doctor import knowledge
from merlin_doctor.activated import ActivatedEnv
from merlin_doctor.activation import (
    SCRIPT_NAME,
    activate_command,
    activate_script,
    deactivate_script,
    script_paths,
)
from merlin_doctor.checks import FactsView, check
from merlin_doctor.recipe import Recipe
from merlin_doctor.verdict import Finding, failed, listed, passed, skipped, warned

NO_ENV = "not inside an env (neither VIRTUAL_ENV nor CONDA_PREFIX is set)"


def _reactivate(act, recipe, prefix: str) -> str:
    """How this env is activated again: a venv's bin/activate, or conda's."""
    if act.get("kind") == "venv":
        return f"deactivate; {activate_command('venv', prefix)}"
    return f"conda deactivate && {activate_command('conda', prefix, _env_label(recipe, prefix))}"


def _env_label(recipe, prefix: str) -> str:
    return os.path.basename(os.path.normpath(prefix)) if prefix else (recipe.env_name or recipe.name)


def _leaky_scripts(scripts) -> list:
    """Other activate.d scripts that change LD_LIBRARY_PATH with no deactivate.d undo (the article's)."""
    undo = scripts.get("deactivate.d", {})
    return [
        name
        for name, text in scripts.get("activate.d", {}).items()
        if name != SCRIPT_NAME and re.search(r"\bLD_LIBRARY_PATH=", text) and name not in undo
    ]


@check("activation.scripts", probes=["activation"], step="activation")
def scripts_written(facts: FactsView, recipe: Recipe) -> Finding:
    """activate.d and deactivate.d scripts exist and set/undo exactly the recipe's variables."""
    act = facts["activation"]
    if not recipe.activate:
        return passed(f"recipe {recipe.name} sets no activation variables")
    prefix = act.get("prefix")
    if not prefix:
        return skipped(f"{NO_ENV}: no activation scripts to judge")
    scripts = act.get("scripts", {})
    on = scripts.get("activate.d", {}).get(SCRIPT_NAME)
    off = scripts.get("deactivate.d", {}).get(SCRIPT_NAME)
    kind = act.get("kind") or "conda"
    where = dict(script_paths(kind, prefix))
    if on is None or off is None:
        missing = [k for k, v in (("activate", on), ("deactivate", off)) if v is None]
        what = "the activate.d and deactivate.d scripts are" if len(missing) == 2 else f"the {missing[0]}.d script is"
        return failed(f"{what} missing, so the recipe's variables are never set", evidence=where)
    if on != activate_script(recipe, kind) or off != deactivate_script(recipe, kind):
        return failed("the activation scripts differ from what the recipe implies (edited or stale)", evidence=where)
    unhooked = [k for k, v in (scripts.get("hooked") or {}).items() if not v]
    if unhooked:
        return failed(
            f"{prefix}/bin/activate does not run etc/merlin-doctor/{unhooked[0]}.sh, so "
            "`source bin/activate` leaves the recipe's variables unset",
            evidence={"hooked": scripts.get("hooked"), **where},
        )
    leaky = _leaky_scripts(scripts)
    if leaky:
        return warned(
            f"{', '.join(leaky)} in activate.d changes LD_LIBRARY_PATH and nothing undoes it, "
            "so it leaks into every env activated afterwards",
            fix=f"rm {prefix}/etc/conda/activate.d/{leaky[0]}  # merlin-doctor.sh does its job",
            evidence={"leaky": leaky, **where},
        )
    return passed("activation scripts are in place and match the recipe", evidence=where)


@check("activation.applied", probes=["activation"], needs=["activation.scripts"])
def variables_applied(facts: FactsView, recipe: Recipe) -> Finding:
    """This shell actually has the recipe's variables (the env was activated after the scripts were written)."""
    act = facts["activation"]
    prefix = act.get("prefix")
    if not recipe.activate:
        return passed(f"recipe {recipe.name} sets no activation variables")
    if not prefix:
        return skipped(NO_ENV)
    live = act.get("variables", {})
    wrong = {}
    for name, rule in ActivatedEnv(recipe, prefix).expected().items():
        value = live.get(name)
        if "equals" in rule and value != rule["equals"][0]:
            wrong[name] = {"expected": rule["equals"][0], "found": value}
        entries = (value or "").split(":")
        absent = [p for p in rule.get("contains", []) if p not in entries]
        if absent:
            wrong[name] = {"expected_entries": absent, "found": value}
    if wrong:
        return failed(
            f"{', '.join(wrong)} not set as the recipe says in this shell",
            fix=_reactivate(act, recipe, prefix),
            evidence={"variables": wrong},
        )
    return passed(f"{', '.join(v.name for v in recipe.activate)} are set for this env")


@check("activation.ld-path", probes=["activation"])
def ld_path_entries_exist(facts: FactsView, recipe: Recipe) -> Finding:
    """Every LD_LIBRARY_PATH entry exists (a stale entry hides what it was meant to provide)."""
    entries = facts["activation"].get("ld_library_path", [])
    missing = [e["path"] for e in entries if not e["exists"]]
    if missing and recipe.is_container:  # images set some (/usr/local/nvidia/lib): the loader skips them
        return passed(
            f"{len(entries)} LD_LIBRARY_PATH entries; {len(missing)} absent ones set by the image are "
            f"skipped by the loader: {listed(missing, 3)}",
            evidence={"missing": missing},
        )
    if missing:
        return warned(
            f"LD_LIBRARY_PATH names {len(missing)} directory(ies) that do not exist: {listed(missing, 3)}",
            fix="Remove them from LD_LIBRARY_PATH (check ~/.bashrc and activate.d scripts)",
            evidence={"missing": missing},
        )
    return passed(
        f"{len(entries)} LD_LIBRARY_PATH entries, all present", evidence={"entries": [e["path"] for e in entries]}
    )


@check("activation.libdevice", probes=["activation"], step="copies", gpu=True)
def libdevice_found(facts: FactsView, recipe: Recipe) -> Finding:
    """XLA's --xla_gpu_cuda_data_dir holds nvvm/libdevice/libdevice.10.bc."""
    act = facts["activation"]
    data_dir = act.get("xla_data_dir")
    fallback = act.get("fallback_libdevice") or {}
    if not act.get("prefix") and any(v.name == "XLA_FLAGS" for v in recipe.activate):
        return skipped(f"{NO_ENV}: the env's XLA_FLAGS cannot apply")
    if not data_dir and fallback.get("exists") and not any(v.name == "XLA_FLAGS" for v in recipe.activate):
        return passed(
            f"XLA_FLAGS is unset and XLA finds libdevice where it looks last: {fallback['path']}",
            evidence={"path": fallback["path"]},
        )
    if not data_dir:
        return failed(
            "XLA_FLAGS sets no --xla_gpu_cuda_data_dir, so XLA looks for libdevice in /usr/local/cuda",
            evidence={"variables": {"XLA_FLAGS": act.get("variables", {}).get("XLA_FLAGS")}},
        )
    lib = act.get("libdevice", {})
    if not lib.get("exists") and recipe.is_venv:  # the nvcc wheel holds it where XLA looks: no copy to make
        return failed(
            f"libdevice is missing at {lib.get('path')}: XLA-compiled functions will fail",
            fix=_nvcc_install(recipe),
            step="pip",
            evidence={"path": lib.get("path")},
        )
    if not lib.get("exists"):
        return failed(
            f"libdevice is missing at {lib.get('path')}: XLA-compiled functions will fail",
            evidence={"path": lib.get("path")},
        )
    return passed(f"libdevice at {lib['path']}", evidence={"path": lib["path"]})


def _nvcc_install(recipe, release: Optional[str] = None) -> str:
    """The recipe's own nvcc (its pip wheel in a venv recipe, else its conda cuda-nvcc), or a
    `release` of it when the recipe's cannot serve this machine."""
    wheel = recipe.install_command([r.name for r, _ in recipe.requirements() if r.name.startswith("nvidia-cuda-nvcc")])
    if wheel or recipe.is_venv:
        if release:
            return f"python -m pip install 'nvidia-cuda-nvcc-cu{release.split('.')[0]}=={release}.*'"
        return wheel or "python -m pip install nvidia-cuda-nvcc-cu11"
    channel, _, spec = (recipe.conda_dependency("cuda-nvcc") or "nvidia::cuda-nvcc").rpartition("::")
    if release:
        spec = f"cuda-nvcc={release}"
    return f"conda install -c {shlex.quote(channel or 'nvidia')} {shlex.quote(spec)}"


def _recipe_nvcc_release(recipe) -> Optional[str]:
    """The CUDA release of the recipe's nvcc: its conda cuda-nvcc, or its nvidia-cuda-nvcc wheel."""
    pins = recipe.conda_dependencies + [str(r) for r, _ in recipe.requirements()]
    m = re.search(r"cuda-nvcc(?:-cu\d+)?\s*=+\s*(\d+\.\d+)", " ".join(pins))
    return m.group(1) if m else None


def ptxas_archs(release: str) -> Optional[Set[str]]:
    """The compute capabilities a ptxas of this CUDA release accepts (knowledge/gpu.yml), or
    None for a release older than the table."""
    rows = [r for r in knowledge.load("gpu")["ptxas_targets"] if Version(r["cuda"]) <= Version(release)]
    if not rows:
        return None
    oldest = [r["oldest"] for r in rows if r.get("oldest")][-1]
    return {a for r in rows for a in r["adds"] if Version(a) >= Version(oldest)}


def _known_archs() -> Set[str]:
    return {a for r in knowledge.load("gpu")["ptxas_targets"] for a in r["adds"]}


def _rejected(release: str, devices: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The GPUs this ptxas cannot compile for (XLA asks for each GPU's exact sm_XY); GPUs newer
    than the table are not judged."""
    archs = ptxas_archs(release)
    if archs is None:
        return []
    return [d for d in devices if d["compute_capability"] in _known_archs() - archs]


def _good_release(recipe, devices: List[Dict[str, Any]], driver_cuda: Optional[str]) -> Optional[str]:
    """A ptxas release that accepts every GPU here and is not newer than the driver: the
    recipe's own cuda-nvcc when it qualifies, else the oldest release in the table that does."""

    def fits(release: str) -> bool:
        newer = driver_cuda and Version(release) > Version(driver_cuda)
        return not newer and not _rejected(release, devices)

    own = _recipe_nvcc_release(recipe)
    if own and fits(own):
        return None  # the recipe's own pin
    return next((r["cuda"] for r in knowledge.load("gpu")["ptxas_targets"] if fits(r["cuda"])), None)


def _sm(cc: str) -> str:
    return "sm_" + cc.replace(".", "")


@check("activation.ptxas", probes=["activation", "nvml"], gpu=True)
def ptxas_found(facts: FactsView, recipe: Recipe) -> Finding:
    """ptxas is where XLA looks, not older than the CUDA runtime, can compile for every GPU here,
    and is not of a newer CUDA than the driver."""
    ptxas = facts["activation"].get("ptxas") or {}
    if not ptxas.get("path"):
        return failed(
            "ptxas is not where XLA looks (cuda data dir, /usr/local/cuda, PATH): XLA cannot compile GPU kernels",
            fix=_nvcc_install(recipe),
            evidence={"searched": ptxas.get("searched")},
        )
    runtime = recipe.expect.cuda_runtime
    release = ptxas.get("release")
    if not release:
        return warned(f"ptxas at {ptxas['path']} did not report its version", fix=_nvcc_install(recipe), evidence=ptxas)
    nvml = facts["nvml"]
    devices = nvml.get("devices") or []
    driver_cuda = nvml.get("cuda_driver_version")
    evidence = {**ptxas, "gpus": [d["compute_capability"] for d in devices], "driver_cuda": driver_cuda}
    fix = _nvcc_install(recipe, _good_release(recipe, devices, driver_cuda))
    if runtime and Version(release) < Version(runtime):
        return failed(
            f"ptxas {ptxas.get('version')} at {ptxas['path']} is older than the CUDA {runtime} runtime",
            fix=fix,
            evidence=evidence,
        )
    rejected = _rejected(release, devices)
    if rejected:
        names = ", ".join(f"GPU {d['index']} {d['name']} ({_sm(d['compute_capability'])})" for d in rejected)
        return failed(
            f"ptxas {ptxas.get('version')} (CUDA {release}) cannot compile for {names}: it rejects "
            f"--gpu-name {_sm(rejected[0]['compute_capability'])}, so XLA-compiled functions fail there",
            fix=fix,
            evidence=evidence,
        )
    if driver_cuda and Version(release).major > Version(driver_cuda).major:
        return failed(
            f"ptxas {ptxas.get('version')} is of CUDA {release}, a newer major than the driver's CUDA "
            f"{driver_cuda}: the driver cannot load the code it produces, so XLA-compiled functions fail",
            fix=fix,
            evidence=evidence,
        )
    if driver_cuda and Version(release) > Version(driver_cuda):
        return warned(
            f"ptxas {ptxas.get('version')} is newer than the driver's CUDA {driver_cuda}: it runs through "
            "minor-version compatibility, and XLA disables its parallel compilation",
            fix=fix,
            evidence=evidence,
        )
    where = f", compiles for {', '.join(sorted({_sm(d['compute_capability']) for d in devices}))}" if devices else ""
    return passed(f"ptxas {ptxas.get('version')} at {ptxas['path']}{where}", evidence=evidence)
