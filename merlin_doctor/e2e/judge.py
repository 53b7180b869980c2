"""Judge a PLE run: did the article's model really learn? Pure: no I/O, no TensorFlow.

The input is the JSON `python -m merlin_doctor.e2e.ple` prints (or what the parent made of
a child that crashed or timed out: `{"error": "...", "log": [...]}`); the thresholds are
`knowledge/e2e.yml`'s `ple` mapping. A task's limits are keyed
`<metric>_min` / `<metric>_max` and name a field of that task's held-out metrics.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

from merlin_doctor.verdict import Status

LOG_TAIL = 20
MAX_REASONS_IN_SUMMARY = 3


def judge_ple(result: Dict[str, Any], thresholds: Dict[str, Any]) -> Tuple[Status, str, Dict[str, Any]]:
    """Pass only if the loss fell, nothing is NaN and every task beats its held-out threshold."""
    where = _where(result)
    evidence: Dict[str, Any] = {
        "size": result.get("size"),
        "sabotage": result.get("sabotage"),
        "device": result.get("device"),
        "first_batch_loss": result.get("first_batch_loss"),
        "curve": result.get("curve") or [],
        "metrics": result.get("metrics") or {},
        "thresholds": thresholds,
        "examples_per_s": result.get("examples_per_s"),
        "wall_s": result.get("wall_s"),
        "gpu_memory": result.get("gpu_memory"),
        "versions": result.get("versions"),
    }
    error = result.get("error")
    if error:
        evidence["error"] = error
        evidence["log_tail"] = (result.get("log") or [])[-LOG_TAIL:]
        return Status.FAIL, f"PLE run{where} did not finish: {_error_line(error)}", evidence

    reasons = _loss_reasons(result, thresholds.get("loss_decrease_min", 0.0))
    reasons += _metric_reasons(evidence["metrics"], thresholds.get("tasks") or {})
    evidence["reasons"] = reasons
    if reasons:
        shown = "; ".join(reasons[:MAX_REASONS_IN_SUMMARY])
        more = len(reasons) - MAX_REASONS_IN_SUMMARY
        return Status.FAIL, f"PLE{where} did not learn: {shown}" + (f" (+{more} more)" if more > 0 else ""), evidence
    return Status.PASS, f"PLE{where} learned every task: {_scores(evidence)}", evidence


def _loss_reasons(result: Dict[str, Any], decrease_min: float) -> List[str]:
    """From the untrained model's loss (the first batch's, else epoch 1's mean) to the last epoch's."""
    losses = [point.get("loss") for point in result.get("curve") or []]
    not_finite = [i + 1 for i, loss in enumerate(losses) if not _finite(loss)]
    if not_finite:
        return [f"the training loss is NaN or missing at epoch {', '.join(map(str, not_finite))}"]
    start = result.get("first_batch_loss")
    if start is not None and not _finite(start):
        return ["the training loss is NaN on the first batch"]
    points = ([start] if start is not None else []) + losses
    if len(points) < 2:
        return [f"{len(losses)} epoch(s) trained: too few to tell whether the loss decreases"]
    first, last = points[0], points[-1]
    decrease = (first - last) / abs(first) if first else 0.0
    if decrease < decrease_min:
        return [
            f"the training loss did not decrease: {first:.4g} -> {last:.4g} "
            f"({-decrease:+.1%}; needs {-decrease_min:.0%} or lower)"
        ]
    return []


def _metric_reasons(metrics: Dict[str, Any], limits_by_task: Dict[str, Dict[str, float]]) -> List[str]:
    reasons = [f"{task}: no threshold for this task" for task in metrics if task not in limits_by_task]
    for task, limits in limits_by_task.items():
        entry = metrics.get(task)
        if not isinstance(entry, dict):
            reasons.append(f"{task}: no held-out metrics")
            continue
        if entry.get("error"):
            reasons.append(f"{task}: {entry['error']}")
            continue
        # Every field but the task type is a number; the child writes NaN as null (strict JSON).
        not_numbers = [name for name, value in entry.items() if name != "type" and not _finite(value)]
        reasons += [f"{task} {name} is NaN" for name in not_numbers]
        for key, limit in limits.items():
            name, bound = _split_limit(key)
            value = entry.get(name)
            if name not in entry:
                reasons.append(f"{task} {name} is missing")
            elif name in not_numbers:
                continue
            elif value is None:
                reasons.append(f"{task} {name} has no value")
            elif bound == "min" and value < limit:
                reasons.append(f"{task} {name} {value:.3f} < {limit:g}")
            elif bound == "max" and value > limit:
                reasons.append(f"{task} {name} {value:.3f} > {limit:g}")
    return reasons


def _split_limit(key: str) -> Tuple[str, str]:
    name, _, bound = key.rpartition("_")
    if not name or bound not in ("min", "max"):
        raise ValueError(f"PLE threshold {key!r}: expected <metric>_min or <metric>_max")
    return name, bound


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _where(result: Dict[str, Any]) -> str:
    device = (result.get("device") or {}).get("used") or (result.get("device") or {}).get("requested")
    details = [
        d for d in (result.get("size"), device, result.get("sabotage") and f"sabotage {result['sabotage']}") if d
    ]
    return f" ({', '.join(details)})" if details else ""


def _error_line(error: Any) -> str:
    if isinstance(error, dict):
        message = (error.get("message") or "").strip().splitlines()
        stage = f" at stage {error['stage']}" if error.get("stage") else ""
        return f"{error.get('type', 'error')}{stage}: {message[0] if message else ''}".rstrip(": ")
    return str(error)


def _scores(evidence: Dict[str, Any]) -> str:
    losses = [p["loss"] for p in evidence["curve"]]
    start = evidence["first_batch_loss"] if evidence["first_batch_loss"] is not None else losses[0]
    parts = [f"loss {start:.3g} -> {losses[-1]:.3g}"]
    for task, entry in evidence["metrics"].items():
        if "auc" in entry:
            parts.append(f"{task} AUC {entry['auc']:.3f}")
        elif "rmse_over_std" in entry:
            parts.append(f"{task} RMSE/std {entry['rmse_over_std']:.2f}")
    rate: Optional[float] = evidence.get("examples_per_s")
    if rate:
        parts.append(f"{rate:,.0f} examples/s")
    if evidence.get("wall_s"):
        parts.append(f"{evidence['wall_s']:.1f} s")
    return ", ".join(parts)
