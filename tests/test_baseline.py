"""`check --baseline GOOD.json`: what changed since a known-good snapshot, next to the verdicts."""

from __future__ import annotations

import copy
import json

from conftest import doctor, doctor_json, load_fixture

from merlin_doctor.baseline import change_lines, diff

CUDNN = {
    "soname": "libcudnn.so.8",
    "required": True,
    "loaded": True,
    "version": "8.1.0",
    "path": "/home/ana/miniconda3/envs/merlin/lib/libcudnn.so.8",
}


def good() -> dict:
    facts = copy.deepcopy(load_fixture("gpu-t4-healthy.json"))
    facts["probes"]["cuda_libs"] = {"libraries": [dict(CUDNN)], "duration_s": 0.2}
    return facts


def drifted() -> dict:
    """The good machine a month later: a new driver, cuDNN from elsewhere, TensorFlow upgraded."""
    facts = good()
    probes = facts["probes"]
    probes["nvml"]["driver_version"] = "470.57.02"
    probes["cuda_libs"]["libraries"][0]["path"] = "/usr/local/cuda-10.2/lib64/libcudnn.so.8"
    probes["packages"]["distributions"]["tensorflow"]["version"] = "2.11.0"
    probes["packages"]["distributions"]["fresh-tool"] = {
        "name": "fresh-tool",
        "version": "1.0",
        "requires": [],
        "top_level": ["fresh_tool"],
        "location": "/x",
    }
    entries = probes["activation"]["ld_library_path"]
    entries.insert(0, {"path": "/usr/local/cuda-10.2/lib64", "exists": True})
    # measurements and timings, which are not changes of the configuration
    probes["nvml"]["duration_s"] = 9.0
    probes["nvml"]["log"] = ["something new in the log"]
    probes["nvml"]["devices"][0]["memory_used_bytes"] = 12345
    probes["host"]["disk"]["free_bytes"] = 1
    facts["meta"]["collected_at"] = "2026-12-28T08:20:00+00:00"
    return facts


def test_diff_names_the_driver_the_library_path_and_the_packages_and_nothing_else():
    changes = {c.path: c for c in diff(good(), drifted())}
    assert set(changes) == {
        "nvml.driver_version",
        "cuda_libs.libraries[libcudnn.so.8].path",
        "packages.distributions.tensorflow.version",
        "packages.distributions.fresh-tool",
        "activation.ld_library_path[/usr/local/cuda-10.2/lib64]",
    }
    assert (changes["nvml.driver_version"].before, changes["nvml.driver_version"].after) == ("525.85.12", "470.57.02")
    assert changes["packages.distributions.fresh-tool"].kind == "added"
    assert changes["packages.distributions.fresh-tool"].after == {
        "name": "fresh-tool",
        "version": "1.0",
        "location": "/x",
    }
    lines = change_lines(list(changes.values()))
    assert (
        "cuda_libs.libraries[libcudnn.so.8].path: /home/ana/miniconda3/envs/merlin/lib/libcudnn.so.8 → "
        "/usr/local/cuda-10.2/lib64/libcudnn.so.8" in lines
    )


def test_identical_snapshots_have_no_changes_and_probes_missing_on_one_side_are_not_compared():
    assert diff(good(), good()) == []
    newer = good()
    newer["probes"]["brand_new_probe"] = {"x": 1}
    assert diff(good(), newer) == []


def test_check_baseline_shows_the_changes_next_to_the_verdicts(tmp_path):
    base, now = tmp_path / "good.json", tmp_path / "now.json"
    base.write_text(json.dumps(good()))
    now.write_text(json.dumps(drifted()))
    data = doctor_json("check", "--fast", "--from", str(now), "--baseline", str(base))
    assert data["baseline"] == str(base)
    assert {"path": "nvml.driver_version", "before": "525.85.12", "after": "470.57.02", "kind": "changed"} in data[
        "changes"
    ]
    assert any(v["id"] == "gpu.driver" for v in data["verdicts"])
    result = doctor("check", "--fast", "--from", str(now), "--baseline", str(base))
    assert f"Changed since the baseline {base}:" in result.stdout
    assert "  nvml.driver_version: 525.85.12 → 470.57.02" in result.stdout
    assert result.stdout.index("Changed since the baseline") < result.stdout.index("To fix:")


def test_a_redacted_report_is_a_baseline_too(tmp_path):
    snap, report = tmp_path / "snap.json", tmp_path / "report.json"
    snap.write_text(json.dumps(good()))
    assert doctor("report", "--from", str(snap), "-o", str(report)).returncode == 0
    assert doctor_json("check", "--fast", "--from", str(snap), "--baseline", str(report))["changes"] == []
    now = tmp_path / "now.json"
    now.write_text(json.dumps(drifted()))
    changes = doctor_json("check", "--fast", "--from", str(now), "--baseline", str(report))["changes"]
    assert {
        "path": "cuda_libs.libraries[libcudnn.so.8].path",
        "before": "<home>/miniconda3/envs/merlin/lib/libcudnn.so.8",
        "after": "/usr/local/cuda-10.2/lib64/libcudnn.so.8",
        "kind": "changed",
    } in changes


def test_a_live_run_against_its_own_report_changed_nothing(tmp_path):
    report = tmp_path / "report.json"
    assert doctor("report", "--fast", "-o", str(report)).returncode == 0
    result = doctor("check", "--fast", "--baseline", str(report))
    assert f"Nothing changed since the baseline {report}." in result.stdout, result.stdout
