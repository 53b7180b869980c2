"""THE model of an env as activated: what `conda activate` (activate.d) or `source bin/activate`
leaves in the environment, computed from the recipe exactly as the generated script does it.

The `fix` planner judges an env as activated, the CUDA-library probe loads libraries with
the search path activation gives, the activation checks compare the live variables with
what activation sets: all of them ask this module. `tests/test_activated.py` holds it to
what bash really gets by sourcing the script `activation.activate_script` writes.

Re-activation starts from the environment as it was before our script ran (the script
saves each variable it changes, and deactivation restores it), exactly as conda runs
deactivate.d before activate.d when an env is activated again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Mapping

from merlin_doctor.recipe import EnvVar, Recipe

CONDA, VENV = "conda", "venv"
#: The variable each kind of activation sets to the env's prefix (the scripts refer to it).
PREFIX_VARIABLE = {CONDA: "CONDA_PREFIX", VENV: "VIRTUAL_ENV"}
#: Shell variables the activate script keeps so deactivation restores exactly what was there.
SAVED = "_MERLIN_DOCTOR_OLD_"
WAS_UNSET = "_MERLIN_DOCTOR_UNSET_"


@dataclass(frozen=True)
class ActivatedEnv:
    recipe: Recipe
    prefix: str
    kind: str = CONDA

    @property
    def prefix_variable(self) -> str:
        return PREFIX_VARIABLE[self.kind]

    def value(self, var: EnvVar, before: str) -> str:
        """The variable's value after activation, given its value before ("" when unset).
        As the script does it: `set` replaces; prepend/append keep a non-empty old value
        between them, separated by colons, duplicates and all."""
        expand = self.recipe.expand
        if var.set is not None:
            return expand(var.set, self.prefix)
        parts = [expand(p, self.prefix) for p in var.prepend]
        parts += [before] if before else []
        parts += [expand(p, self.prefix) for p in var.append]
        return os.pathsep.join(parts)

    def deactivated(self, env: Mapping[str, str]) -> Dict[str, str]:
        """`env` with an earlier activation by our script undone (what deactivate.d does)."""
        out = dict(env)
        for var in self.recipe.activate:
            if WAS_UNSET + var.name in out:
                out.pop(var.name, None)
            elif SAVED + var.name in out:
                out[var.name] = out[SAVED + var.name]
            out.pop(WAS_UNSET + var.name, None)
            out.pop(SAVED + var.name, None)
        return out

    def environ(self, env: Mapping[str, str]) -> Dict[str, str]:
        """The environment after activating this env in a shell whose environment is `env`."""
        out = self.deactivated(env)
        out[self.prefix_variable] = self.prefix
        bin_dir = os.path.join(self.prefix, "bin")
        path = out.get("PATH", "")
        if path.split(os.pathsep)[0] != bin_dir:
            out["PATH"] = os.pathsep.join(p for p in (bin_dir, path) if p)
        for var in self.recipe.activate:
            before = out.get(var.name)
            if before is None:
                out[WAS_UNSET + var.name] = "1"
            else:
                out[SAVED + var.name] = before
            out[var.name] = self.value(var, before or "")
        return out

    def library_path(self, env: Mapping[str, str]) -> List[str]:
        """LD_LIBRARY_PATH's entries after activation, in the loader's order."""
        return [p for p in self.environ(env).get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]

    def expected(self) -> Dict[str, Dict[str, List[str]]]:
        """What each recipe variable must hold in an activated shell: `equals` a value, or
        `contains` each of the entries activation adds."""
        expand = self.recipe.expand
        out: Dict[str, Dict[str, List[str]]] = {}
        for var in self.recipe.activate:
            if var.set is not None:
                out[var.name] = {"equals": [expand(var.set, self.prefix)]}
            else:
                out[var.name] = {"contains": [expand(p, self.prefix) for p in var.prepend + var.append]}
        return out
