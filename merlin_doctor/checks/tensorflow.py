"""TensorFlow checks, judged on what TensorFlow itself did in a child process.

TensorFlow's own log lines are part of the facts; `explain` names their cause, so a
verdict says *why* a GPU is missing, not only that it is. The cause of a failed part
comes from that part alone: its exception first, then the log lines written while it ran
(the child marks where each part starts, `probes/tensorflow.with_steps`). On a machine
meant to run on the CPU, causes that only GPU checks judge are left out.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Optional

from packaging.specifiers import SpecifierSet

from merlin_doctor import knowledge
from merlin_doctor.checks import FactsView, check, is_gpu_check
from merlin_doctor.checks.gpu import visible_gpus
from merlin_doctor.recipe import Recipe
from merlin_doctor.verdict import Finding, Status, failed, passed, skipped, warned

EXPLAINED_SHOWN = 3


def explained(lines: Iterable[str], gpu: bool = True) -> List[Dict[str, Any]]:
    """The problems `merlin-doctor explain` finds in some log lines, root cause first; without
    `gpu`, only those a CPU machine can have."""
    from merlin_doctor.explain import explain_lines

    found = [m for m in explain_lines(list(lines)).failures if gpu or not is_gpu_check(m.check)]
    return [
        {"id": m.id, "title": m.title, "fix": m.fix, "lines": [e.text for e in m.evidence[:2]]}
        for m in found[:EXPLAINED_SHOWN]
    ]


def step_log(result: Dict[str, Any], *names: str) -> List[str]:
    """The log lines written while the named steps ran; the whole log for a snapshot taken
    before the child marked its steps."""
    log = result.get("log") or []
    steps = result.get("steps")
    if steps is None:
        return log
    return [line for s in steps if s["step"] in names for line in log[s["start"] : s["end"]]]


def exception_lines(part: Dict[str, Any]) -> List[str]:
    """What a failed part raised, as lines to explain: type and the whole message."""
    exc = part.get("exception")
    if exc:
        return [f"{exc['type']}: {line}" for line in exc["message"].splitlines()] or [exc["type"]]
    return (part.get("error") or "").splitlines()


def attributed(
    result: Dict[str, Any], part: Dict[str, Any], steps: Iterable[str], recipe: Recipe, extra: Iterable[str] = ()
) -> List[Dict[str, Any]]:
    """The cause of a failed part: what its exception says, then its own steps' log lines."""
    gpu = recipe.gpu != "none"
    first = explained(list(extra) + exception_lines(part), gpu)
    seen = {f["id"] for f in first}
    rest = [f for f in explained(step_log(result, *steps), gpu) if f["id"] not in seen]
    return (first + rest)[:EXPLAINED_SHOWN]


def one_line(text: Optional[str]) -> str:
    """The first non-empty line: a verdict is one line in the stream, the rest is evidence."""
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


def _because(found: List[Dict[str, Any]]) -> str:
    return f": {found[0]['title']} ({found[0]['id']})" if found else ""


def _tensorflow_install(recipe: Recipe, force: bool = False) -> str:
    """The recipe's TensorFlow pin installed (the image's own fix for a container recipe)."""
    wanted = recipe.expect.tensorflow or ""
    return recipe.install_command(["tensorflow"], force) or f"python -m pip install 'tensorflow{wanted}'"


def _tf(facts) -> Dict[str, Any]:
    return facts["tensorflow"]


def _last_step(result: Dict[str, Any]) -> Optional[str]:
    steps = result.get("steps") or []
    return steps[-1]["step"] if steps else None


@check("tf.import", probes=["tensorflow"])
def tensorflow_imports(facts: FactsView, recipe: Recipe) -> Finding:
    """`import tensorflow` works and its version and CUDA build are the recipe's."""
    tf = _tf(facts)
    if tf.get("error"):
        during = _last_step(tf)
        found = attributed(tf, {}, [during] if during else [], recipe, extra=[tf["error"]])
        where = f" (during {during})" if during else ""
        return failed(
            f"the TensorFlow probe did not finish{where}: {one_line(tf['error'])}{_because(found)}",
            fix=found[0]["fix"] if found else "python -c 'import tensorflow'  # read its error",
            evidence={"explained": found, "error": tf["error"], "step": during, "log_tail": tf.get("log", [])[-20:]},
        )
    imported = tf.get("import", {})
    if not imported.get("ok"):
        found = attributed(tf, imported, ["import"], recipe)
        missing = "No module named 'tensorflow'" in (imported.get("error") or "")
        fix = _tensorflow_install(recipe, force=not missing)
        return failed(
            f"import tensorflow failed: {one_line(imported.get('error'))}{_because(found)}",
            fix=found[0]["fix"] if found and not missing and not recipe.is_container else fix,
            evidence={
                "explained": found,
                "exception": imported.get("exception"),
                "traceback": imported.get("traceback"),
            },
        )
    version = imported["version"]
    wanted = recipe.expect.tensorflow
    build = (tf.get("build_info") or {}).get("info", {})
    evidence = {
        "version": version,
        "cuda_version": build.get("cuda_version"),
        "cudnn_version": build.get("cudnn_version"),
        "import_s": imported.get("seconds"),
    }
    if wanted and not SpecifierSet(wanted).contains(version, prereleases=True):
        return failed(
            f"TensorFlow {version} is installed; recipe {recipe.name} needs {wanted}",
            fix=recipe.image_fix() if recipe.is_container else f"python -m pip install 'tensorflow{wanted}'",
            evidence=evidence,
        )
    cuda = recipe.expect.cuda_runtime
    if cuda and build.get("cuda_version") and build["cuda_version"].split(".")[0] != str(cuda).split(".")[0]:
        return failed(
            f"TensorFlow {version} was built for CUDA {build['cuda_version']}, not the recipe's CUDA {cuda}",
            fix=_tensorflow_install(recipe, force=True),
            evidence=evidence,
        )
    return passed(
        f"TensorFlow {version} imports in {imported.get('seconds')} s (built for CUDA "
        f"{build.get('cuda_version')}, cuDNN {build.get('cudnn_version')})",
        evidence=evidence,
    )


@check("tf.gpus", probes=["tensorflow", "nvml"], needs=["tf.import", "gpu.nvml"], gpu=True)
def tensorflow_sees_gpus(facts: FactsView, recipe: Recipe) -> Finding:
    """TensorFlow registers every GPU the driver sees (the log says why when it does not)."""
    tf, nvml = _tf(facts), facts["nvml"]
    devices = tf.get("devices") or {}
    registered = devices.get("GPU", []) if devices.get("ok") else []
    gpus = nvml.get("devices", [])
    cvd = (tf.get("env") or {}).get("CUDA_VISIBLE_DEVICES")
    expected = len(visible_gpus(cvd, gpus)[0]) if cvd is not None else len(gpus)
    evidence: Dict[str, Any] = {
        "tensorflow_gpus": [d["name"] for d in registered],
        "nvml_gpus": len(nvml.get("devices", [])),
        "CUDA_VISIBLE_DEVICES": cvd,
    }
    if len(registered) < expected:
        found = attributed(tf, devices, ["import", "devices"], recipe)
        return failed(
            f"TensorFlow registers {len(registered)} of {expected} GPU(s){_because(found)}",
            fix=found[0]["fix"] if found else "merlin-doctor check --only cuda  # which library is missing",
            evidence={"explained": found, **evidence},
        )
    return passed(
        f"TensorFlow registers {len(registered)} GPU(s): {', '.join(evidence['tensorflow_gpus'])}", evidence=evidence
    )


def _per_device(test: Dict[str, Any]) -> List[Dict[str, Any]]:
    gpus = test.get("gpus")
    return gpus if isinstance(gpus, list) else []


def _device_problem(g: Dict[str, Any], tolerance: float) -> Optional[str]:
    """Why one GPU's run of a sub-test does not count, or None."""
    if not g.get("ok"):
        return g.get("error") or "it failed"
    if "GPU" not in (g.get("placed_on") or "GPU"):  # TensorFlow falls back to the CPU silently
        return f"it ran on {g['placed_on']}, not on the GPU"
    if g.get("rel_err") is None:
        return "its result is NaN or infinite"
    if g["rel_err"] > tolerance:
        return f"relative error {g['rel_err']:.2e} against the CPU (> {tolerance:g})"
    return None


def _judge_compute(tf: Dict[str, Any], recipe: Recipe, name: str, what: str, fix: str, cpu_part: bool) -> Finding:
    test = (tf.get("tests") or {}).get(name) or {}
    if test.get("skipped") or test.get("ok") is None and not test:
        return skipped(test.get("skipped", f"no {name} facts"))
    if not test.get("ok"):
        found = attributed(tf, test, [f"tests.{name}"], recipe)
        return failed(
            f"the {what} failed: {one_line(test.get('error'))}{_because(found)}",
            fix=found[0]["fix"] if found else fix,
            evidence={"explained": found, "exception": test.get("exception")},
        )
    cpu = test.get("cpu") or {}
    tolerance = knowledge.load("tensorflow")["parity_tolerance"]
    cpu_err = cpu.get("rel_err_vs_numpy", cpu.get("rel_err"))
    if cpu_part and cpu_err is not None and cpu_err > tolerance:
        return failed(
            f"the {what} on the CPU is wrong: relative error {cpu_err:.2e} > {tolerance:g}",
            fix=recipe.install_command(["tensorflow"], force=True),
            evidence={"cpu": cpu},
        )
    gpus = _per_device(test)
    evidence = {"cpu": cpu, "gpus": gpus, "tolerance": tolerance}
    broken = [(g, why) for g in gpus for why in [_device_problem(g, tolerance)] if why]
    if broken:
        g, why = broken[0]
        found = attributed(tf, g, [f"tests.{name}"], recipe)
        return failed(
            f"the {what} on {g['device']} is wrong: {one_line(why)}{_because(found)}",
            fix=found[0]["fix"] if found else fix,
            evidence={"explained": found, **evidence},
        )
    where = f"on the CPU and {len(gpus)} GPU(s)" if gpus else "on the CPU (no GPU visible to TensorFlow)"
    return passed(f"the {what} runs {where} and agrees within {tolerance:g}", evidence=evidence)


@check("tf.matmul", probes=["tensorflow"], needs=["tf.import"])
def matmul_parity(facts: FactsView, recipe: Recipe) -> Finding:
    """A float32 matmul on each GPU matches the same one on the CPU."""
    return _judge_compute(
        _tf(facts),
        recipe,
        "matmul",
        "matmul (cuBLAS on a GPU)",
        "merlin-doctor check --only cuda.libcublas",
        cpu_part=True,
    )


@check("tf.cudnn", probes=["tensorflow"], needs=["tf.import"], gpu=True)
def cudnn_convolution(facts: FactsView, recipe: Recipe) -> Finding:
    """A cuDNN convolution runs on each GPU (catches 'DNN library is not found', 'Failed to get convolution algorithm')."""
    return _judge_compute(
        _tf(facts), recipe, "conv", "cuDNN convolution", "merlin-doctor check --only cuda.libcudnn", cpu_part=False
    )


@check("tf.xla", probes=["tensorflow"], needs=["tf.import"])
def xla_compiles(facts: FactsView, recipe: Recipe) -> Finding:
    """An XLA `jit_compile=True` function compiles and runs (on a GPU it needs libdevice and ptxas)."""
    return _judge_compute(
        _tf(facts),
        recipe,
        "xla",
        "XLA-compiled function",
        "merlin-doctor fix --only copies  # libdevice; and check activation.ptxas",
        cpu_part=True,
    )


@check(
    "tf.tensorrt",
    probes=["tensorflow"],
    optional_probes=["recipe_files"],  # are the links already made? (older snapshots lack it)
    needs=["tf.import", "gpu.nvml", "cuda.tensorrt"],
    step="links",
    gpu=True,
)
def tensorrt_in_tensorflow(facts: FactsView, recipe: Recipe) -> Finding:
    """TF-TRT loads TensorRT, and the version it loads is the one TensorFlow was linked against.

    It needs cuda.tensorrt: where TensorRT is absent or at another soname, that check says so
    (the two never disagree), and this one judges only what TensorFlow adds."""
    if not recipe.expect.tensorrt_soname:
        return skipped(f"recipe {recipe.name} does not use TensorRT")
    test = ((_tf(facts).get("tests") or {}).get("tensorrt")) or {}
    if not test.get("ok"):
        return skipped(f"TensorFlow reports nothing about TF-TRT: {test.get('error') or test.get('skipped')}")
    linked = test.get("linked_version")
    loaded = (test.get("loaded_version") or {}).get("version")
    evidence = {"linked": linked, "loaded": loaded, "enabled": test.get("enabled")}
    if not test.get("enabled"):
        found = attributed(_tf(facts), test, ["tests.tensorrt"], recipe)
        links = facts["recipe_files"].get("links") or []
        linked_already = bool(links) and all(e["state"] == "ok" for e in links)
        # With the links in place the links step has nothing left to do: no step then, only the cause.
        return warned(
            f"TF-TRT cannot load TensorRT (TensorFlow was linked against {linked}){_because(found)}; "
            "inference conversion is unavailable, training is unaffected",
            step="" if linked_already else None,
            evidence={"explained": found, **evidence},
        )
    intended = recipe.expect.tensorrt
    if linked and loaded and linked.split(".")[0] != loaded.split(".")[0]:
        if intended and SpecifierSet(intended).contains(loaded):
            return passed(
                f"TF-TRT loads TensorRT {loaded}, the one recipe {recipe.name} intends ({intended}), "
                f"through the .so.{linked.split('.')[0]} links (TensorFlow was linked against {linked})",
                evidence=evidence,
            )
        return warned(
            f"TF-TRT loads TensorRT {loaded} but TensorFlow was linked against {linked}: conversion is "
            "not supported across majors (training is unaffected)",
            step="",
            evidence=evidence,
        )
    return passed(f"TF-TRT loads TensorRT {loaded} (linked against {linked})", evidence=evidence)


@check("tf.merlin-imports", probes=["tensorflow", "nvml"], needs=["tf.import"])
def merlin_imports(facts: FactsView, recipe: Recipe) -> Finding:
    """nvtabular and merlin.models.tf import; without cudf a GPU machine runs NVTabular in CPU mode."""
    imports = _tf(facts).get("imports") or {}
    broken = {
        m: r.get("error") for m, r in imports.items() if m in ("nvtabular", "merlin.models.tf") and not r.get("ok")
    }
    versions = {m: r.get("version") for m, r in imports.items() if r.get("ok")}
    if broken:
        module, error = next(iter(broken.items()))
        part = imports[module]
        found = attributed(_tf(facts), part, [f"imports.{module}"], recipe)
        return failed(
            f"import {module} failed: {one_line(error)}{_because(found)}",
            fix=found[0]["fix"] if found else _install_missing(part, recipe),
            evidence={"explained": found, "exception": part.get("exception"), "versions": versions},
        )
    no_cudf = [m for m in ("cudf", "dask_cudf") if not (imports.get(m) or {}).get("ok")]
    on_gpu = bool(facts["nvml"].get("devices")) and recipe.gpu != "none"
    if no_cudf and on_gpu:
        return warned(
            f"{' and '.join(no_cudf)} do not import on this GPU machine: NVTabular runs in its experimental "
            "CPU mode (pandas/dask) instead of on the GPU",
            fix=recipe.install_command(_cudf_packages(recipe)),
            evidence={"versions": versions},
        )
    note = f"; {', '.join(no_cudf)} absent, so NVTabular uses the CPU" if no_cudf else ""
    return passed(
        f"nvtabular {versions.get('nvtabular')} and merlin.models.tf {versions.get('merlin.models.tf')} import{note}",
        evidence={"versions": versions},
    )


def _cudf_packages(recipe: Recipe) -> List[str]:
    """The recipe's cuDF distributions (`cudf-cu11`, `dask-cudf-cu11`: the module names with a CUDA suffix)."""
    return [
        name
        for name, _ in ((str(req.name), g) for req, g in recipe.requirements())
        if re.sub(r"-cu\d+$", "", name.lower().replace("_", "-")) in ("cudf", "dask-cudf")
    ]


def _install_missing(part: Dict[str, Any], recipe: Recipe) -> str:
    """For a missing module, the recipe's requirement that provides it (`merlin.dataloader` is
    the distribution merlin-dataloader); else the packages checks, which know every pin."""
    from packaging.utils import canonicalize_name

    exc = part.get("exception") or {}
    m = re.search(r"No module named '([\w.]+)'", exc.get("message") or part.get("error") or "")
    parts = m.group(1).split(".") if m else []
    names = {canonicalize_name("-".join(parts[:n])) for n in range(len(parts), 0, -1)}
    pinned = [r.name for r, _ in recipe.requirements() if canonicalize_name(r.name) in names]
    command = recipe.install_command(pinned[:1]) if pinned else None
    return command or "merlin-doctor check --only packages  # which requirement is missing or broken"


def _e2e_thresholds(recipe: Recipe) -> Optional[Dict[str, Any]]:
    return knowledge.load("e2e")["ple"] if recipe.expect.e2e == "ple" else None


@check("e2e.ple", probes=["e2e"], needs=["tf.import"])
def ple_learns(facts: FactsView, recipe: Recipe) -> Finding:
    """The article's PLE multi-task model trains end to end and beats chance on every task (held-out data)."""
    from merlin_doctor.e2e.judge import judge_ple

    thresholds = _e2e_thresholds(recipe)
    if thresholds is None:
        return skipped(f"recipe {recipe.name} names no end-to-end model")
    result = facts["e2e"]
    status, summary, evidence = judge_ple(result, thresholds)
    if status is not Status.PASS:
        found = explained(result.get("log", []), gpu=recipe.gpu != "none")
        evidence["explained"] = found
        return Finding(
            status,
            summary + _because(found),
            evidence,
            found[0]["fix"] if found else "merlin-doctor check -v --only tf  # TensorFlow's own checks first",
        )
    return Finding(status, summary, evidence)
