"""The reference end-to-end check: the article's PLE model trained on planted-signal data.

`ple.py` trains in a child process under the target environment's Python and prints
plain JSON; `judge.py` turns that JSON into a verdict without any I/O; `ple.yml` holds
the run sizes (the thresholds are judgement data: knowledge/e2e.yml). Nothing here imports TensorFlow or Merlin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

SPEC_PATH = Path(__file__).with_name("ple.yml")
DEVICES = ("auto", "cpu", "gpu")
SABOTAGES = ("shuffle-labels", "lr0")


def load_spec(path: Path = SPEC_PATH) -> Dict[str, Any]:
    """The sizes of the PLE run (`sizes`)."""
    import yaml

    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def ple_command(
    python: str,
    size: str = "quick",
    device: str = "auto",
    sabotage: Optional[str] = None,
    progress: bool = True,
    out: Optional[str] = None,
) -> List[str]:
    """The child command the doctor runs; `isolate.run_json_command` puts the package on PYTHONPATH."""
    cmd = [python, "-m", "merlin_doctor.e2e.ple", "--size", size, "--device", device]
    if sabotage:
        cmd += ["--sabotage", sabotage]
    if progress:
        cmd.append("--progress")
    if out:
        cmd += ["--out", out]
    return cmd
