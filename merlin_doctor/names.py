"""Names the CLI offers as choices, in a module that imports nothing, so that parsing a
command line never pays for the engines, the steps or the recipe machinery."""

from __future__ import annotations

#: The repair steps, in the order `setup` runs them (modules of merlin_doctor.setup.steps).
STEP_IDS = ("env", "pip", "links", "activation", "copies")
#: The conda engines `auto` tries, in this order (fastest first; rattler needs no conda).
AUTO_ENGINES = ("micromamba", "mamba", "conda", "rattler")
ENGINE_CHOICES = ("auto",) + AUTO_ENGINES
