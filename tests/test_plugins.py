"""Check plugins: another distribution adds checks through the `merlin_doctor.checks` entry points."""

from __future__ import annotations

import json
import textwrap

import pytest
from conftest import doctor

pytestmark = pytest.mark.per_interpreter  # the doctor must behave the same on each Python it supports


def _install_plugin(site, name: str, module_source: str) -> None:
    """A minimal installed distribution: a module and a dist-info naming it as a check plugin."""
    (site / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[merlin_doctor.checks]\n{name} = {name}\n")


def test_a_plugin_check_is_listed_and_runs(tmp_path):
    _install_plugin(
        tmp_path,
        "site_rules",
        """
        from merlin_doctor.checks import check
        from merlin_doctor.verdict import warned

        @check("site.scratch", probes=["host"])
        def scratch_space(facts, recipe):
            '''The site's rule: CPUs are counted (a plugin check).'''
            return warned(f"{facts['host']['cpu_count']} CPUs counted by a plugin", fix="echo ok")
        """,
    )
    env = {"PYTHONPATH": str(tmp_path)}
    listed = doctor("list", env=env)
    assert "site.scratch" in listed.stdout and "a plugin check" in listed.stdout
    data = json.loads(doctor("check", "--only", "site", "--json", env=env).stdout)
    assert [(v["id"], v["status"]) for v in data["verdicts"]] == [("site.scratch", "warn")]


def test_a_broken_plugin_is_an_error_verdict_not_a_crash(tmp_path):
    _install_plugin(tmp_path, "broken_rules", "raise ImportError('needs a module this site forgot')\n")
    result = doctor("check", "--only", "plugin", "--json", env={"PYTHONPATH": str(tmp_path)})
    verdict = json.loads(result.stdout)["verdicts"][0]
    assert verdict["id"] == "plugin.broken_rules" and verdict["status"] == "error"
    assert "needs a module this site forgot" in verdict["summary"]
    assert result.returncode == 1
