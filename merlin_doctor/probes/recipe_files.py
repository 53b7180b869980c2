"""The recipe's links and copies inside the env named by VIRTUAL_ENV or CONDA_PREFIX, as the steps see them.

The `links` and `copies` steps judge the same state with the same functions, so a check
built on these facts and the step that repairs it can never disagree.
"""

from __future__ import annotations

from typing import Any, Dict

from merlin_doctor.envstate import copy_states, link_states
from merlin_doctor.probes.context import ProbeContext


def probe(ctx: ProbeContext) -> Dict[str, Any]:
    prefix = ctx.judged_prefix()
    if not prefix:
        return {"prefix": None, "links": [], "copies": []}
    recipe = ctx.recipe()
    return {"prefix": prefix, "links": link_states(recipe, prefix), "copies": copy_states(recipe, prefix)}
