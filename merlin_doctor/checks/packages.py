"""Package checks from distribution metadata only: required versions, conflicts, duplicates."""

from __future__ import annotations

import re
import shlex
from typing import Any, Dict, List, Optional, Tuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from merlin_doctor import knowledge
from merlin_doctor.checks import FactsView, check
from merlin_doctor.envstate import applies, unmet
from merlin_doctor.recipe import Recipe
from merlin_doctor.verdict import Finding, failed, listed, passed, warned


def _dists(facts) -> Dict[str, Dict[str, Any]]:
    return facts["packages"].get("distributions", {})


@check("packages.required", probes=["packages"], needs=["python.version"], step="pip")
def required_packages(facts: FactsView, recipe: Recipe) -> Finding:
    """Every package the recipe installs is present at an allowed version (optional groups warn).

    Only in a Python the recipe is built for: in another (3.11, say) its pins cannot install,
    so `pip install tensorflow==2.10.0` would be a fix that cannot work; python.version's is."""
    dists = _dists(facts)
    installed = {key: d["version"] for key, d in dists.items()}
    problems: List[Dict[str, Any]] = []
    for group in recipe.pip:
        for req, version in unmet(group.requirements, installed, facts["packages"].get("python_version")):
            problems.append(
                {
                    "requirement": str(req),
                    "found": version,
                    "group": group.name,
                    # on a machine judged for the CPU, what only a GPU uses is not a failure
                    "optional": group.optional or (group.gpu and recipe.gpu == "none"),
                    "why": group.why,
                }
            )
    if not problems:
        return passed(f"all {len(recipe.requirements())} required packages are installed at allowed versions")
    hard = [p for p in problems if not p["optional"]]
    fixes = []
    for group in recipe.pip:
        reqs = [p["requirement"] for p in problems if p["group"] == group.name]
        if reqs:
            fixes.append(group.install_command(reqs))
    named = listed([f"{p['requirement']} (found {p['found'] or 'nothing'})" for p in (hard or problems)], 6)
    if hard and recipe.is_container:
        return failed(
            f"{len(hard)} package(s) the image ships are missing or at another version: {named}",
            fix=recipe.image_fix(),
            step="",
            evidence={"problems": problems},
        )
    if hard:
        what = "required package is" if len(hard) == 1 else "required packages are"
        return failed(
            f"{len(hard)} {what} missing or at the wrong version: {named}",
            fix=" && ".join(fixes),
            evidence={"problems": problems},
        )
    groups = sorted({p["group"] for p in problems})
    return warned(
        f"optional group(s) {', '.join(groups)} not installed: {problems[0]['why'] or named}",
        fix=recipe.image_fix() if recipe.is_container else " && ".join(fixes),
        evidence={"problems": problems},
    )


_EXTRA_ONLY = re.compile(r";(?!.*\bor\b).*\bextra\s*==")


def _unmet(dists: Dict[str, Dict[str, Any]], python_version: Optional[str] = None) -> List[Dict[str, Any]]:
    """What `pip check` reports: requirements of installed distributions that are not met.

    Requirements that apply only with an extra (most of them in a TensorFlow env) are
    dropped by a cheap text test before the (slow) full parse; pip check ignores them too.
    """
    unmet = []
    for dist in dists.values():
        for text in dist.get("requires", []):
            if _EXTRA_ONLY.search(text):
                continue
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if not applies(req, python_version):
                continue
            dep = dists.get(canonicalize_name(req.name))
            if dep is None:
                unmet.append({"package": f"{dist['name']} {dist['version']}", "requires": str(req), "found": None})
            elif not req.specifier.contains(dep["version"], prereleases=True):
                unmet.append(
                    {"package": f"{dist['name']} {dist['version']}", "requires": str(req), "found": dep["version"]}
                )
    return unmet


def _accepted(unmet: List[Dict[str, Any]], recipe) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Split off the conflicts the recipe's image ships knowingly (`accepted_conflicts`)."""
    rules = {(canonicalize_name(a.package), canonicalize_name(a.requires)): a.why for a in recipe.accepted_conflicts}
    kept, accepted = [], []
    for u in unmet:
        key = (canonicalize_name(u["package"].split()[0]), canonicalize_name(Requirement(u["requires"]).name))
        if u["found"] and key in rules:
            accepted.append(dict(u, why=rules[key]))
        else:
            kept.append(u)
    return kept, accepted


@check("packages.conflicts", probes=["packages"])
def no_conflicts(facts: FactsView, recipe: Recipe) -> Finding:
    """Installed packages' own requirements are met (what `pip check` reports)."""
    unmet, accepted = _accepted(_unmet(_dists(facts), facts["packages"].get("python_version")), recipe)
    note = (
        (
            f" ({len(accepted)} the recipe accepts, see evidence: "
            + ", ".join(f"{a['package']} requires {a['requires']}" for a in accepted)
            + ")"
        )
        if accepted
        else ""
    )
    if not unmet:
        return passed("no broken requirements among installed packages" + note, evidence={"accepted": accepted})
    conflicts = [u for u in unmet if u["found"]]
    first = (conflicts or unmet)[0]
    text = f"{first['package']} requires {first['requires']}, found {first['found'] or 'nothing'}"
    fix = recipe.image_fix() if recipe.is_container else f"python -m pip install '{first['requires']}'"
    if conflicts:
        return failed(f"{len(conflicts)} version conflict(s): {text}", fix=fix, evidence={"unmet": unmet})
    return warned(f"{len(unmet)} missing dependency(ies): {text}", fix=fix, evidence={"unmet": unmet})


def _clash(info: Dict[str, Any]) -> bool:
    """Two distributions install the same files, or one a module file where another a directory.

    Sharing only a namespace directory is by design (PEP 420: every NVIDIA CUDA wheel installs
    its own `nvidia/<name>/`, each with a copy of the empty `nvidia/__init__.py`). A snapshot
    from before the RECORDs were compared is judged as then: a regular package or module.
    """
    if "clashing_files" in info:
        return bool(info["clashing_files"]) or bool(info.get("file_and_dir"))
    return bool({"module", "package"} & set(info["kinds"]))


def _duplicate_fix(
    keep: Optional[str], distributions: List[str], dists: Dict[str, Dict[str, Any]], recipe: Recipe
) -> str:
    """Uninstall the others and reinstall exactly the installed `keep` (no dependency re-resolved);
    with no rule saying which to keep, no uninstall is guessed: the user chooses."""
    if recipe.is_container:
        return recipe.image_fix()
    if not keep:
        return (
            f"python -m pip show {' '.join(distributions)}  # one module from several distributions: "
            "keep the one your stack needs, then python -m pip uninstall -y the others"
        )
    drop = " ".join(d for d in distributions if d != keep)
    installed = (dists.get(canonicalize_name(keep)) or {}).get("version")
    pinned = shlex.quote(f"{keep}=={installed}") if installed else keep
    return f"python -m pip uninstall -y {drop} && python -m pip install --force-reinstall --no-deps {pinned}"


@check("packages.duplicates", probes=["packages"])
def no_duplicate_modules(facts: FactsView, recipe: Recipe) -> Finding:
    """No module is installed by two distributions (pynvml and nvidia-ml-py; cupy and cupy-cuda11x)."""
    shared = facts["packages"].get("shared_modules", {})
    clashes = {name: info for name, info in shared.items() if _clash(info)}
    table = knowledge.load("module_conflicts")
    rank = {"note": 0, "warn": 1, "fail": 2}
    judged = []
    for name, info in sorted(clashes.items()):
        rule = table["modules"].get(name, {})
        severity = rule.get("severity", table["default_severity"])
        fix = _duplicate_fix(rule.get("keep"), info["distributions"], _dists(facts), recipe)
        text = f"{name} from {' and '.join(info['distributions'])}" + (f" ({rule['why']})" if rule.get("why") else "")
        judged.append((rank[severity], text, fix))
    if not judged or max(j[0] for j in judged) == 0:
        notes = "; ".join(j[1] for j in judged)
        return passed(
            "no conflicting module installs" + (f" (known and harmless: {notes})" if notes else ""),
            evidence={"modules": clashes},
        )
    problems = [j for j in judged if j[0] > 0]
    make = failed if max(j[0] for j in problems) == 2 else warned
    return make(
        "module installed twice: " + "; ".join(j[1] for j in problems),
        fix=" && ".join(j[2] for j in problems),
        evidence={"modules": clashes},
    )
