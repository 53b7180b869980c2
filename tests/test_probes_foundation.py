"""The in-process probes on this machine's real Python environments."""

from __future__ import annotations

import json
import subprocess

import pytest

from merlin_doctor.checks.packages import _unmet
from merlin_doctor.probes.context import ProbeContext
from merlin_doctor.probes.registry import probe_named
from merlin_doctor.probes.scheduler import run_probe

pytestmark = pytest.mark.per_interpreter  # the doctor must behave the same on each Python it supports


def _probe_in(python: str, name: str) -> dict:
    code = (
        "import json; from merlin_doctor.probes.context import ProbeContext; from merlin_doctor.probes.registry import probe_named; from merlin_doctor.probes.scheduler import run_probe;"
        f"print(json.dumps(run_probe(probe_named({name!r}), ProbeContext())))"
    )
    return json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)


def test_packages_probe_reads_the_tensorflow_venv_without_importing(tf_python):
    facts = _probe_in(tf_python, "packages")
    dists = facts["distributions"]
    assert dists["tensorflow"]["version"] == "2.10.0"
    assert any(r.startswith("protobuf") and "<3.20" in r for r in dists["tensorflow"]["requires"])
    assert "merlin" in dists["merlin-core"]["top_level"]
    assert facts["shared_modules"]["merlin"]["kinds"] == ["namespace"]
    assert facts["shared_modules"]["pynvml"]["distributions"] == ["nvidia-ml-py", "pynvml"]
    assert _unmet(dists) == [], "the test venv is consistent, as `pip check` says"


def test_pip_check_equivalent_agrees_with_pip(tf_python):
    pip = subprocess.run([tf_python, "-m", "pip", "check"], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stdout


def test_requirements_only_for_extras_are_ignored_but_or_markers_are_kept():
    dists = {
        "a": {
            "name": "a",
            "version": "1",
            "requires": ["b>=2; extra == 'test'", "c>=1; python_version >= '3' or extra == 'x'"],
        },
        "b": {"name": "b", "version": "1", "requires": []},
    }
    assert _unmet(dists) == [
        {"package": "a 1", "requires": 'c>=1; python_version >= "3" or extra == "x"', "found": None}
    ]


def test_host_probe_on_this_machine():
    host = run_probe(probe_named("host"), ProbeContext())
    assert host["system"] == "Linux" and host["memory_bytes"] > 2**30
    assert host["glibc"] and host["disk"]["free_bytes"] > 0


def test_activation_probe_records_existence_of_paths(tmp_path):
    env = {
        "LD_LIBRARY_PATH": f"{tmp_path}:/nonexistent/lib",
        "XLA_FLAGS": f"--xla_gpu_cuda_data_dir={tmp_path}",
        "CONDA_PREFIX": str(tmp_path),
        "PATH": "/usr/bin",
    }
    (tmp_path / "nvvm" / "libdevice").mkdir(parents=True)
    (tmp_path / "nvvm" / "libdevice" / "libdevice.10.bc").write_bytes(b"BC")
    (tmp_path / "etc" / "conda" / "activate.d").mkdir(parents=True)
    (tmp_path / "etc" / "conda" / "activate.d" / "env_vars.sh").write_text("export A=1\n")
    facts = run_probe(probe_named("activation"), ProbeContext(env=env))
    assert facts["ld_library_path"] == [
        {"path": str(tmp_path), "exists": True},
        {"path": "/nonexistent/lib", "exists": False},
    ]
    assert facts["libdevice"]["exists"] is True
    assert facts["scripts"]["activate.d"] == {"env_vars.sh": "export A=1\n"}
    assert facts["scripts"]["deactivate.d"] == {}
