"""The notebook API: `merlin_doctor.check()`, its HTML table, progress, and the %merlin_doctor magic."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import List

import pytest
from conftest import FIXTURES, doctor_json, load_fixture

import merlin_doctor
from merlin_doctor.notebook import Progress
from merlin_doctor.render_html import MARKS, report_table

pytestmark = pytest.mark.per_interpreter  # the doctor must behave the same on each Python it supports

HEALTHY = str(FIXTURES / "facts" / "gpu-t4-healthy.json")
HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>"\'&'
ALLOWED_TAGS = {
    "div",
    "p",
    "b",
    "code",
    "span",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "details",
    "summary",
    "pre",
}


class Page(HTMLParser):
    """Collects tags, attributes and text the way a browser would see them."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.tags: List[str] = []
        self.attrs: List[tuple] = []
        self.text: List[str] = []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data):
        self.text.append(data)


def _verdict(status: str) -> dict:
    return {
        "id": f"area.{status}",
        "status": status,
        "summary": f"{status} {HOSTILE}",
        "fix": f"run {status} {HOSTILE}",
        "evidence": {"name": HOSTILE},
        "step": None,
        "duration_s": 0.0,
    }


def test_every_status_renders_as_a_row_with_its_mark_and_nothing_injects_markup():
    statuses = list(MARKS)
    doc = {
        "recipe": HOSTILE,
        "doctor_version": "0.1.0",
        "exit_code": 1,
        "summary": dict.fromkeys(statuses, 1),
        "verdicts": [_verdict(s) for s in statuses],
    }
    page = Page(report_table(doc))
    assert set(page.tags) <= ALLOWED_TAGS, set(page.tags) - ALLOWED_TAGS
    assert page.tags.count("tr") == 1 + len(statuses)
    assert [v for k, v in page.attrs if k == "data-status"] == ["fail", "error", "warn", "pass", "skip"]
    assert not [k for k, _ in page.attrs if k.startswith("on")], "no event handler attribute got through"
    text = "".join(page.text)
    for status in statuses:
        assert MARKS[status][0] in text and f"{status} {HOSTILE}" in text
    assert text.count(HOSTILE) == len(statuses) + 3 + 1, "recipe, summaries and the problems' fixes show it as text"
    assert text.count(json.dumps(HOSTILE)[1:-1]) == len(statuses), "so does each evidence block (as JSON)"
    assert "something failed" in text


class Rows(HTMLParser):
    """The table as a reader sees it: per row, its status and its cells' text (and rowspans)."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.rows: List[dict] = []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-status" in attrs:
            self.rows.append({"status": attrs["data-status"], "cells": [], "rowspan": []})
        elif tag == "td" and self.rows:
            self.rows[-1]["cells"].append("")
            self.rows[-1]["rowspan"].append(int(attrs.get("rowspan", 1)))

    def handle_data(self, data):
        if self.rows and self.rows[-1]["cells"]:
            self.rows[-1]["cells"][-1] += data


def _v(check_id: str, status: str, summary: str, fix=None) -> dict:
    return {
        "id": check_id,
        "status": status,
        "summary": summary,
        "fix": fix,
        "evidence": {},
        "step": None,
        "duration_s": 0.0,
    }


def test_the_table_puts_problems_first_shows_each_fix_once_and_folds_skips():
    conda = "conda install -c conda-forge cudatoolkit=11.2.2"
    verdicts = [
        _v("host.os", "pass", "Debian 12"),
        _v("cuda.libcudart", "fail", "no libcudart", conda),
        _v("python.env", "warn", "not in a conda env", "conda activate merlin"),
        _v("gpu.nvml", "fail", "no driver", "install the driver"),
        *[_v(f"gpu.c{i}", "skip", "skipped: it needs gpu.nvml") for i in range(7)],
        *[_v(f"cuda.lib{i}", "fail", f"no lib{i}", conda) for i in range(6)],
        _v("tf.import", "skip", "skipped by --fast"),
        _v("host.disk", "pass", "60 GiB free"),
    ]
    doc = {
        "recipe": "tf210-cuda112",
        "doctor_version": "0.1.0",
        "exit_code": 1,
        "summary": {"pass": 2, "warn": 1, "fail": 8, "skip": 8, "error": 0},
        "verdicts": verdicts,
    }
    rows = Rows(report_table(doc)).rows
    assert [r["status"] for r in rows] == ["fail"] * 8 + ["warn", "pass", "pass", "skip", "skip"]
    assert [r["cells"][1] for r in rows[:7]] == ["cuda.libcudart"] + [f"cuda.lib{i}" for i in range(6)]
    assert rows[0]["cells"][3] == conda and rows[0]["rowspan"][3] == 7, "one fix cell spans the 7 checks it fixes"
    assert all(len(r["cells"]) == 3 for r in rows[1:7]), "the rows below share it"
    assert "".join(c for r in rows for c in r["cells"]).count(conda) == 1
    assert rows[7]["cells"][1] == "gpu.nvml" and rows[8]["cells"][3] == "conda activate merlin"
    assert rows[11]["cells"][1] == "7 checks" and rows[11]["cells"][2].startswith("skipped: it needs gpu.nvml")
    assert all(f"gpu.c{i}" in rows[11]["cells"][2] for i in range(7)), "the folded ids are one click away"
    assert rows[12]["cells"][1] == "tf.import"


def test_a_hostile_fact_from_a_snapshot_shows_as_text(tmp_path):
    snap = load_fixture("gpu-t4-healthy.json")
    snap["probes"]["nvml"]["devices"][0]["name"] = HOSTILE
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(snap))
    result = merlin_doctor.check(from_file=str(path), only="gpu.nvml", quiet=True)
    page = Page(result._repr_html_())
    assert set(page.tags) <= ALLOWED_TAGS
    assert HOSTILE in "".join(page.text)


def test_check_returns_the_cli_verdicts_as_an_object():
    result = merlin_doctor.check(from_file=HEALTHY, fast=True, quiet=True)
    cli = doctor_json("check", "--fast", "--from", HEALTHY)
    assert result.statuses == {v["id"]: v["status"] for v in cli["verdicts"]}
    assert result.ok is (cli["exit_code"] == 0)
    assert result.facts["nvml"]["driver_version"] == "525.85.12"
    assert result["gpu.nvml"].status.value == result.statuses["gpu.nvml"]
    assert set(result.to_dict()) == set(cli)
    with pytest.raises(KeyError):
        result["gpu.nope"]
    assert repr(result).startswith("<CheckResult recipe='tf210-cuda112' ok=")


def test_keyword_arguments_mirror_the_flags():
    result = merlin_doctor.check(from_file=HEALTHY, fast=True, only=["gpu", "host"], skip="gpu.health", quiet=True)
    assert {i.split(".")[0] for i in result.statuses} == {"gpu", "host"} and "gpu.health" not in result.statuses
    strict = merlin_doctor.check(from_file=HEALTHY, fast=True, only="host", strict=True, quiet=True)
    assert strict.ok
    with pytest.raises(merlin_doctor.errors.InputError):
        merlin_doctor.check(from_file=HEALTHY, only="gpu.flux", quiet=True)


def test_progress_without_ipython_writes_lines_to_stderr(capsys):
    progress = Progress()
    assert progress.handle is None, "no IPython shell runs in this test process"
    progress.probe(SimpleNamespace(slow=True, description="Import TensorFlow in a child process"))
    progress.probe(SimpleNamespace(slow=False, description="read files"))
    assert capsys.readouterr().err == "  … Import TensorFlow in a child process ...\n"
    Progress(quiet=True).probe(SimpleNamespace(slow=True, description="x"))
    assert capsys.readouterr().err == ""


def test_import_is_cheap_and_ipython_is_optional(tmp_path):
    code = (
        "import sys, merlin_doctor; "
        "print(sorted(m for m in ('click', 'IPython', 'merlin_doctor.notebook', 'merlin_doctor.session', 'yaml') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    blocker = tmp_path / "IPython.py"
    blocker.write_text("raise ImportError('IPython is not installed here')\n")
    code = (
        f"import merlin_doctor; r = merlin_doctor.check(from_file={HEALTHY!r}, only='host', quiet=True); "
        "print(r.ok, '<table' in r._repr_html_())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        cwd=str(FIXTURES),
    ).stdout
    assert out.strip() == "True True"


@pytest.fixture(scope="module")
def shell():
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython()
    ip.run_line_magic("load_ext", "merlin_doctor")
    return ip


def test_magic_shows_the_table_and_updates_one_progress_line(shell, capsys):
    result = shell.run_line_magic("merlin_doctor", f"check --fast --from {HEALTHY} --only gpu")
    assert result is not None and result.statuses["gpu.nvml"] == "pass"
    html_formatter = shell.display_formatter.formatters["text/html"]
    html_formatter.enabled = True  # as in a Jupyter kernel; a terminal shell shows text only
    shown, _ = shell.display_formatter.format(result)
    assert "<table" in shown["text/html"] and "gpu.nvml" in shown["text/html"]
    out = capsys.readouterr().out
    assert "merlin-doctor: starting ..." in out and "checks in" in out


def test_magic_usage_errors_are_one_line(shell, capsys):
    assert shell.run_line_magic("merlin_doctor", "check --bogus") is None
    err = capsys.readouterr().err
    assert err.startswith("merlin-doctor: error: No such option") and "--bogus" in err and err.count("\n") == 1
    assert shell.run_line_magic("merlin_doctor", "check --only gpu.flux") is None
    assert "unknown check id 'gpu.flux'" in capsys.readouterr().err
    assert shell.run_line_magic("merlin_doctor", "list") is None
    assert "usage: %merlin_doctor check" in capsys.readouterr().err
    assert shell.run_line_magic("merlin_doctor", f"check --from {HEALTHY} --baseline {HEALTHY}") is None
    assert "--baseline works on the command line only: !merlin-doctor check --from" in capsys.readouterr().err
    assert shell.run_line_magic("merlin_doctor", "check --help") is None
    assert "--cpu-ok" in capsys.readouterr().out


def test_magic_json_prints_the_cli_document(shell, capsys):
    assert shell.run_line_magic("merlin_doctor", f"check --fast --from {HEALTHY} --only host --json") is None
    assert json.loads(capsys.readouterr().out)["recipe"] == "tf210-cuda112"
