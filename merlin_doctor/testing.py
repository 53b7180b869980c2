"""Judge facts in a test, with no probing: the helper for check authors (README, "Adding a check").

from merlin_doctor.testing import judge
verdicts = judge(load_fixture("gpu-t4-healthy.json"), only=["gpu.memory"])
assert verdicts["gpu.memory"].status.value == "pass"
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Union

from merlin_doctor.checks import all_checks
from merlin_doctor.facts import Facts
from merlin_doctor.options import CheckOptions
from merlin_doctor.recipe import Recipe, load_recipe
from merlin_doctor.runner import run_checks, select_checks
from merlin_doctor.verdict import Verdict


def judge(
    facts: Dict[str, Any], recipe: Union[str, Recipe, None] = None, only: Iterable[str] = (), **options: Any
) -> Dict[str, Verdict]:
    """The verdicts of the checks `only` selects (ids or areas; every check when empty), and of
    the checks they need, on `facts`: a snapshot (`{"probes": ...}`, as `merlin-doctor facts`
    writes it) or the probes mapping itself. `options` are CheckOptions fields (`cpu_ok=True`)."""
    probes: Optional[Dict[str, Any]] = facts.get("probes") if isinstance(facts.get("probes"), dict) else None
    loaded = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    checks = select_checks(all_checks(), only=list(only))
    verdicts = run_checks(checks, Facts(probes if probes is not None else facts), loaded, CheckOptions(**options))
    return {v.id: v for v in verdicts}
