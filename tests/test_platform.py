"""The platform (WSL 1 or 2, a container) is one fact of one probe, read under the context's root."""

from __future__ import annotations

import pytest

from merlin_doctor.checks import all_checks
from merlin_doctor.facts import Facts
from merlin_doctor.options import CheckOptions
from merlin_doctor.probes.context import ProbeContext
from merlin_doctor.probes.host import probe as host_probe
from merlin_doctor.recipe import load_recipe
from merlin_doctor.runner import run_checks, select_checks

KERNELS = {
    "4.4.0-19041-Microsoft": 1,  # WSL 1: a translation layer, no GPU
    "5.15.90.1-microsoft-standard-WSL2": 2,
    "6.1.0-18-amd64": None,
}


@pytest.mark.parametrize("release, version", sorted(KERNELS.items()))
def test_host_reads_wsl_under_its_root(tmp_path, release, version):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "version").write_text(f"Linux version {release} (gcc) #1 SMP\n")
    (tmp_path / ".dockerenv").write_text("")
    facts = host_probe(ProbeContext(root=str(tmp_path)))
    assert facts["wsl_version"] == version and facts["wsl"] is (version is not None)
    assert facts["container"] == "docker", "the container marker is read under the root too"


def test_wsl1_fails_the_kernel_check_with_the_upgrade():
    probes = {
        "host": {"system": "Linux", "wsl": True, "wsl_version": 1, "wsl_lib": []},
        "kernel": {"modules_loaded": [], "device_nodes": []},
        "nvml": {"error": "NVML_ERROR_LIBRARY_NOT_FOUND"},
    }
    checks = select_checks(all_checks(), only=["gpu.kernel-module"])
    verdict = {v.id: v for v in run_checks(checks, Facts(probes), load_recipe(None), CheckOptions())}[
        "gpu.kernel-module"
    ]
    assert verdict.status.value == "fail" and "WSL 1" in verdict.summary
    assert "wsl --set-version" in verdict.fix
