"""Activation checks: the env's activate.d/deactivate.d scripts, and the live variables."""
from __future__ import annotations

import os
import re

from packaging.version import Version

from merlin_doctor.activated import ActivatedEnv
from merlin_doctor.activation import (
    SCRIPT_NAME,
    activate_script,
    deactivate_script,
)
from merlin_doctor.checks import FactsView, check
from merlin_doctor.recipe import Recipe
from merlin_doctor.verdict import Finding, failed, passed, skipped, warned

REACTIVATE = "conda deactivate && conda activate {env}"


def _env_label(recipe, prefix: str) -> str:
    return os.path.basename(os.path.normpath(prefix)) if prefix else (recipe.env_name or recipe.name)


def _leaky_scripts(scripts) -> list:
    """Other activate.d scripts that change LD_LIBRARY_PATH with no deactivate.d undo (the article's)."""
    undo = scripts.get("deactivate.d", {})
    return [name for name, text in scripts.get("activate.d", {}).items()
            if name != SCRIPT_NAME and re.search(r"\bLD_LIBRARY_PATH=", text) and name not in undo]


@check("activation.scripts", probes=["activation"], step="activation")
def scripts_written(facts: FactsView, recipe: Recipe) -> Finding:
    """activate.d and deactivate.d scripts exist and set/undo exactly the recipe's variables."""
    act = facts["activation"]
    if not recipe.activate:
        return passed(f"recipe {recipe.name} sets no activation variables")
    prefix = act.get("prefix")
    if not prefix:
        return skipped("not inside a conda env (CONDA_PREFIX is unset): no activation scripts to judge")
    scripts = act.get("scripts", {})
    on = scripts.get("activate.d", {}).get(SCRIPT_NAME)
    off = scripts.get("deactivate.d", {}).get(SCRIPT_NAME)
    where = {"activate": f"{prefix}/etc/conda/activate.d/{SCRIPT_NAME}",
             "deactivate": f"{prefix}/etc/conda/deactivate.d/{SCRIPT_NAME}"}
    if on is None or off is None:
        missing = [k for k, v in (("activate", on), ("deactivate", off)) if v is None]
        what = "the activate.d and deactivate.d scripts are" if len(missing) == 2 else f"the {missing[0]}.d script is"
        return failed(f"{what} missing, so the recipe's variables are never set", evidence=where)
    if on != activate_script(recipe) or off != deactivate_script(recipe):
        return failed("the activation scripts differ from what the recipe implies (edited or stale)",
                      evidence=where)
    leaky = _leaky_scripts(scripts)
    if leaky:
        return warned(f"{', '.join(leaky)} in activate.d changes LD_LIBRARY_PATH and nothing undoes it, "
                      "so it leaks into every env activated afterwards",
                      fix=f"rm {prefix}/etc/conda/activate.d/{leaky[0]}  # merlin-doctor.sh does its job",
                      evidence={"leaky": leaky, **where})
    return passed("activation scripts are in place and match the recipe", evidence=where)


@check("activation.applied", probes=["activation"], needs=["activation.scripts"])
def variables_applied(facts: FactsView, recipe: Recipe) -> Finding:
    """This shell actually has the recipe's variables (the env was activated after the scripts were written)."""
    act = facts["activation"]
    prefix = act.get("prefix")
    if not recipe.activate:
        return passed(f"recipe {recipe.name} sets no activation variables")
    if not prefix:
        return skipped("not inside a conda env (CONDA_PREFIX is unset)")
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
        return failed(f"{', '.join(wrong)} not set as the recipe says in this shell",
                      fix=REACTIVATE.format(env=_env_label(recipe, prefix)), evidence={"variables": wrong})
    return passed(f"{', '.join(v.name for v in recipe.activate)} are set for this env")


@check("activation.ld-path", probes=["activation"])
def ld_path_entries_exist(facts: FactsView, recipe: Recipe) -> Finding:
    """Every LD_LIBRARY_PATH entry exists (a stale entry hides what it was meant to provide)."""
    entries = facts["activation"].get("ld_library_path", [])
    missing = [e["path"] for e in entries if not e["exists"]]
    if missing and recipe.is_container:  # images set some (/usr/local/nvidia/lib): the loader skips them
        return passed(f"{len(entries)} LD_LIBRARY_PATH entries; {len(missing)} absent ones set by the image are "
                      f"skipped by the loader: {', '.join(missing[:3])}",
                      evidence={"missing": missing})
    if missing:
        return warned(f"LD_LIBRARY_PATH names {len(missing)} directory(ies) that do not exist: {', '.join(missing[:3])}",
                      fix="Remove them from LD_LIBRARY_PATH (check ~/.bashrc and activate.d scripts)",
                      evidence={"missing": missing})
    return passed(f"{len(entries)} LD_LIBRARY_PATH entries, all present",
                  evidence={"entries": [e["path"] for e in entries]})


@check("activation.libdevice", probes=["activation"], step="copies", gpu=True)
def libdevice_found(facts: FactsView, recipe: Recipe) -> Finding:
    """XLA's --xla_gpu_cuda_data_dir holds nvvm/libdevice/libdevice.10.bc."""
    act = facts["activation"]
    data_dir = act.get("xla_data_dir")
    fallback = act.get("fallback_libdevice") or {}
    if not act.get("prefix") and any(v.name == "XLA_FLAGS" for v in recipe.activate):
        return skipped("not inside a conda env (CONDA_PREFIX is unset): the env's XLA_FLAGS cannot apply")
    if not data_dir and fallback.get("exists") and not any(v.name == "XLA_FLAGS" for v in recipe.activate):
        return passed(f"XLA_FLAGS is unset and XLA finds libdevice where it looks last: {fallback['path']}",
                      evidence={"path": fallback["path"]})
    if not data_dir:
        return failed("XLA_FLAGS sets no --xla_gpu_cuda_data_dir, so XLA looks for libdevice in /usr/local/cuda",
                      evidence={"variables": {"XLA_FLAGS": act.get("variables", {}).get("XLA_FLAGS")}})
    lib = act.get("libdevice", {})
    if not lib.get("exists"):
        return failed(f"libdevice is missing at {lib.get('path')}: XLA-compiled functions will fail",
                      evidence={"path": lib.get("path")})
    return passed(f"libdevice at {lib['path']}", evidence={"path": lib["path"]})


def _nvcc_install(recipe) -> str:
    nvcc = next((d for d in recipe.conda_dependencies if "cuda-nvcc" in d), "nvidia::cuda-nvcc")
    channel, _, spec = nvcc.rpartition("::")
    return f"conda install -c {channel or 'nvidia'} {spec}"


@check("activation.ptxas", probes=["activation"], gpu=True)
def ptxas_found(facts: FactsView, recipe: Recipe) -> Finding:
    """ptxas (from cuda-nvcc) is where XLA looks for it, and not older than the CUDA runtime."""
    ptxas = facts["activation"].get("ptxas") or {}
    if not ptxas.get("path"):
        return failed("ptxas is not where XLA looks (cuda data dir, /usr/local/cuda, PATH): XLA cannot compile GPU kernels",
                      fix=_nvcc_install(recipe), evidence={"searched": ptxas.get("searched")})
    runtime = recipe.expect.cuda_runtime
    release = ptxas.get("release")
    if not release:
        return warned(f"ptxas at {ptxas['path']} did not report its version", fix=_nvcc_install(recipe),
                      evidence=ptxas)
    if runtime and Version(release) < Version(runtime):
        return failed(f"ptxas {ptxas.get('version')} at {ptxas['path']} is older than the CUDA {runtime} runtime",
                      fix=_nvcc_install(recipe), evidence=ptxas)
    return passed(f"ptxas {ptxas.get('version')} at {ptxas['path']}", evidence=ptxas)
