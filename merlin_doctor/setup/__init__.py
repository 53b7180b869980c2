"""The env-building half: `setup` and `fix` orchestration, converging steps, conda engines, its report."""
