"""The real CLI in a subprocess, as a user runs it, on this GPU-less machine."""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES, doctor, doctor_json

pytestmark = pytest.mark.per_interpreter  # the doctor must behave the same on each Python it supports


def test_check_on_this_gpu_less_machine_fails_with_reasons():
    result = doctor("check", "--fast")
    assert result.returncode == 1
    assert "[✗] gpu.nvml" in result.stdout
    assert "To fix:" in result.stdout and "Install the NVIDIA driver" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_check_cpu_ok_in_the_healthy_cpu_venv_exits_0(tf_python):
    result = doctor("check", "--fast", "--recipe", "cpu", "--cpu-ok", python=tf_python)
    assert result.returncode == 0, result.stdout
    assert "[✗]" not in result.stdout
    folded = [line for line in result.stdout.splitlines() if "--cpu-ok says" in line]
    assert len(folded) == 1 and "skipped" in folded[0], "the GPU skips fold into one line"


def test_json_is_pure_and_complete():
    result = doctor("check", "--fast", "--json")
    data = json.loads(result.stdout)
    assert data["schema_version"] == 1 and data["exit_code"] == result.returncode == 1
    ids = {v["id"] for v in data["verdicts"]}
    assert {"host.os", "gpu.nvml", "packages.required"} <= ids
    for v in data["verdicts"]:
        assert set(v) == {"id", "status", "summary", "evidence", "fix", "step", "duration_s"}
    assert set(data["facts"]["probes"]) >= {"host", "nvml", "packages"}


def test_check_from_a_saved_snapshot_gives_the_same_verdicts(tmp_path):
    snap = tmp_path / "snap.json"
    assert doctor("facts", "--fast", "-o", str(snap)).returncode == 0  # --fast: the checks compared are too
    live = doctor_json("check", "--fast")
    saved = doctor_json("check", "--fast", "--from", str(snap))
    # Summaries may hold live measurements (free disk) that move between the two runs.
    strip = lambda d: [(v["id"], v["status"], v["fix"]) for v in d["verdicts"]]  # noqa: E731
    assert strip(saved) == strip(live)
    summaries = lambda d: {v["id"]: v["summary"] for v in d["verdicts"] if v["id"] != "host.disk"}  # noqa: E731
    assert summaries(saved) == summaries(live)


def test_check_from_the_json_output_of_check(tmp_path):
    out = tmp_path / "check.json"
    out.write_text(doctor("check", "--fast", "--json").stdout)
    assert doctor("check", "--fast", "--from", str(out)).returncode == 1


def test_check_from_fixture_healthy_gpu():
    result = doctor("check", "--fast", "--from", str(FIXTURES / "facts" / "gpu-t4-healthy.json"))
    assert result.returncode == 0, result.stdout


def test_unknown_check_id_is_a_one_line_usage_error():
    result = doctor("check", "--only", "gpu.flux")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "merlin-doctor: error: unknown check id 'gpu.flux'; `merlin-doctor list` shows them all"
    )


def test_bad_snapshot_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = doctor("check", "--from", str(bad))
    assert result.returncode == 2 and "not a JSON facts snapshot" in result.stderr and "Traceback" not in result.stderr
    result = doctor("check", "--from", str(tmp_path / "missing.json"))
    assert result.returncode == 2 and "cannot read the snapshot" in result.stderr


def test_only_and_skip():
    data = doctor_json("check", "--only", "host", "--skip", "host.disk")
    assert {v["id"] for v in data["verdicts"]} == {"host.os", "host.glibc", "host.cpu", "host.memory", "host.platform"}


def test_strict_turns_warnings_into_exit_1(tmp_path):
    snap = json.loads((FIXTURES / "facts" / "gpu-t4-healthy.json").read_text())
    snap["probes"]["host"]["memory_bytes"] = 2 * 1024**3
    path = tmp_path / "s.json"
    path.write_text(json.dumps(snap))
    assert doctor("check", "--fast", "--from", str(path)).returncode == 0
    assert doctor("check", "--fast", "--strict", "--from", str(path)).returncode == 1


def test_list_shows_every_check_with_needs_and_steps():
    result = doctor("list")
    assert result.returncode == 0
    assert "activation.applied" in result.stdout and "needs: activation.scripts" in result.stdout
    assert "fixed by step: copies" in result.stdout
    data = json.loads(doctor("list", "--json").stdout)
    assert all(c["description"] for c in data["checks"])


def test_recipes_lists_and_shows():
    result = doctor("recipes")
    assert "tf210-cuda112" in result.stdout and "(default)" in result.stdout and "cpu" in result.stdout
    assert "name: cpu" in doctor("recipes", "cpu").stdout


def test_no_colour_when_not_a_tty():
    assert "\x1b[" not in doctor("check", "--fast").stdout


def test_help_teaches():
    result = doctor("check", "--help")
    assert "--cpu-ok" in result.stdout and "Exit code" in result.stdout


def test_no_heavy_imports_at_module_import(tf_python):
    import subprocess

    code = (
        "import sys, merlin_doctor.cli, merlin_doctor.checks as c; c.all_checks();"
        "import merlin_doctor.runner, merlin_doctor.facts, merlin_doctor.render;"
        "heavy = [m for m in ('tensorflow', 'merlin.models', 'dask', 'cudf', 'nvtabular') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([tf_python, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_quick_ple_takes_one_stated_time_in_the_readme_the_help_and_its_spec():
    import re

    from conftest import REPO

    texts = {
        "README": (REPO / "README.md").read_text(),
        "--help": doctor("check", "--help").stdout,
        "ple.yml": (REPO / "merlin_doctor" / "e2e" / "ple.yml").read_text(),
    }
    stated = r"quick\D{0,30}?(\d+) s\b"
    figures = {name: set(re.findall(stated, " ".join(text.split()))) for name, text in texts.items()}
    assert all(figures.values()) and len(set.union(*figures.values())) == 1, figures


def test_shell_completion_works_as_the_readme_says():
    from conftest import REPO

    assert "_MERLIN_DOCTOR_COMPLETE=bash_source merlin-doctor" in (REPO / "README.md").read_text()
    script = doctor(env={"_MERLIN_DOCTOR_COMPLETE": "bash_source"})
    assert script.returncode == 0 and "-F _merlin_doctor_completion merlin-doctor" in script.stdout
    words = doctor(
        env={"_MERLIN_DOCTOR_COMPLETE": "bash_complete", "COMP_WORDS": "merlin-doctor check --pre", "COMP_CWORD": "2"}
    )
    assert "--prefix" in words.stdout
