"""The engine: needs, skips, errors from checks that raise, selection and exit codes."""

from __future__ import annotations

import pytest

from merlin_doctor.checks import Check
from merlin_doctor.errors import InputError
from merlin_doctor.facts import Facts
from merlin_doctor.options import CheckOptions
from merlin_doctor.recipe import load_recipe
from merlin_doctor.runner import exit_code, run_checks, select_checks
from merlin_doctor.verdict import Status, failed, passed, warned


def _check(id, fn, probes=("host",), **kw):
    return Check(id, fn, tuple(probes), **kw)


def _run(checks, **options):
    verdicts = run_checks(
        checks, Facts({"host": {"system": "Linux"}}), load_recipe("tf210-cuda112"), CheckOptions(**options)
    )
    return {v.id: v for v in verdicts}


def test_a_check_that_raises_is_an_error_verdict_and_the_run_goes_on():
    def boom(facts, recipe):
        raise ZeroDivisionError("oops")

    v = _run([_check("a.boom", boom), _check("a.ok", lambda f, r: passed("fine"))])
    assert v["a.boom"].status is Status.ERROR and "ZeroDivisionError: oops" in v["a.boom"].summary
    assert v["a.ok"].status is Status.PASS


def test_needs_skip_with_reason_when_the_need_failed():
    checks = [
        _check("a.base", lambda f, r: failed("no")),
        _check("a.child", lambda f, r: passed("yes"), needs=("a.base",)),
    ]
    v = _run(checks)
    assert v["a.child"].status is Status.SKIP
    assert v["a.child"].summary == "skipped: it needs a.base, which did not pass (fail)"


def test_a_warning_need_still_lets_the_dependent_run():
    checks = [
        _check("a.base", lambda f, r: warned("meh")),
        _check("a.child", lambda f, r: passed("yes"), needs=("a.base",)),
    ]
    assert _run(checks)["a.child"].status is Status.PASS


def test_undeclared_probe_access_is_an_error():
    v = _run([_check("a.sneaky", lambda f, r: passed(str(f["nvml"])))])
    assert v["a.sneaky"].status is Status.ERROR and "without declaring it" in v["a.sneaky"].summary


def test_gpu_checks_skip_with_cpu_ok():
    v = _run([_check("gpu.x", lambda f, r: failed("no gpu"), gpu=True)], cpu_ok=True)
    assert v["gpu.x"].status is Status.SKIP and "--cpu-ok" in v["gpu.x"].summary


def test_returning_something_else_than_a_finding_is_an_error():
    v = _run([_check("a.bad", lambda f, r: "pass")])
    assert v["a.bad"].status is Status.ERROR


def test_step_becomes_the_fix_command_when_the_check_gives_none():
    v = _run([_check("a.x", lambda f, r: failed("broken"), step="links")])
    assert v["a.x"].fix == "merlin-doctor fix --only links" and v["a.x"].step == "links"


def test_selection_by_id_and_area_and_unknown_ids():
    checks = [_check("a.one", None), _check("a.two", None), _check("b.one", None)]
    assert [c.id for c in select_checks(checks, only=["a"])] == ["a.one", "a.two"]
    assert [c.id for c in select_checks(checks, skip=["a.two"])] == ["a.one", "b.one"]
    with pytest.raises(InputError, match="unknown check id 'c'"):
        select_checks(checks, only=["c"])


def test_exit_codes():
    from merlin_doctor.verdict import Verdict

    warn = [Verdict("a", Status.WARN, "")]
    assert exit_code(warn) == 0 and exit_code(warn, strict=True) == 1
    assert exit_code([Verdict("a", Status.ERROR, "")]) == 1
    assert exit_code([Verdict("a", Status.SKIP, ""), Verdict("b", Status.PASS, "")]) == 0


def test_only_runs_what_the_chosen_check_needs_and_skip_wins():
    checks = [
        _check("a.base", lambda f, r: passed("ok")),
        _check("a.child", lambda f, r: passed("yes"), needs=("a.base",)),
    ]
    assert [c.id for c in select_checks(checks, only=["a.child"])] == ["a.base", "a.child"]
    chosen = select_checks(checks, only=["a.child"], skip=["a.base"])
    v = _run(chosen)
    assert v["a.child"].status is Status.SKIP and v["a.child"].summary == "skipped: it needs a.base, which was not run"


def test_a_probe_missing_from_a_snapshot_skips_and_a_probe_that_raised_is_an_error():
    def reads_nvml(facts, recipe):
        return passed(str(facts["nvml"]["devices"]))

    check = [_check("a.gpu", reads_nvml, probes=("nvml",))]
    verdicts = run_checks(check, Facts({}), load_recipe("tf210-cuda112"), CheckOptions())
    assert verdicts[0].status is Status.SKIP and "holds no 'nvml' facts" in verdicts[0].summary
    broken = Facts({"nvml": {"error": "KeyError: 'x'", "traceback": "Traceback ..."}})
    verdicts = run_checks(check, broken, load_recipe("tf210-cuda112"), CheckOptions())
    assert verdicts[0].status is Status.ERROR and verdicts[0].summary == "the nvml probe failed: KeyError: 'x'"


def test_a_check_runs_after_the_checks_it_needs_whatever_the_registration_order():
    late = _check("b.late", lambda f, r: passed("ok"), needs=("a.first",))
    first = _check("a.first", lambda f, r: passed("ok"))
    assert [c.id for c in select_checks([late, first])] == ["a.first", "b.late"]
    statuses = {i: v.status for i, v in _run(select_checks([late, first])).items()}
    assert statuses == {"a.first": Status.PASS, "b.late": Status.PASS}, "not skipped as 'a.first was not run'"
