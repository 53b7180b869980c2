"""What people read: the streamed terminal lines, folded skips, wrapping, counts, `result.problems`."""

from __future__ import annotations

import io
import re
from typing import List

from conftest import doctor

from merlin_doctor.checks import all_checks
from merlin_doctor.render import ID_WIDTH, Terminal, count_line
from merlin_doctor.session import Problems
from merlin_doctor.verdict import Status, Verdict

CPU_OK = "GPU check skipped: --cpu-ok says this machine runs on the CPU"
LONG = (
    "libcudart.so.11.0 (CUDA runtime) cannot be loaded: cannot open shared object file: No such file or "
    "directory; found only /usr/local/cuda-13.0/lib64/libcudart.so.13, another major TensorFlow does not load"
)
CONDA_FIX = "conda install -c conda-forge cudatoolkit=11.2.2 && echo a long command that must stay on one line"


def _verdicts() -> List[Verdict]:
    return [
        Verdict("host.os", Status.PASS, "Debian GNU/Linux 12 (bookworm), kernel 6.1, x86_64"),
        Verdict("python.env", Status.WARN, "not inside a conda env", fix="conda activate merlin"),
        Verdict("cuda.libcudart", Status.FAIL, LONG, fix=CONDA_FIX),
        Verdict("cuda.libcublas", Status.FAIL, "libcublas.so.11 cannot be loaded", fix=CONDA_FIX),
        Verdict("container.nvidia-runtime", Status.FAIL, "the nvidia runtime is not registered", fix="sudo x"),
        *[Verdict(f"gpu.check{i}", Status.SKIP, CPU_OK) for i in range(19)],
        Verdict("tf.import", Status.SKIP, "skipped by --fast (it imports TensorFlow or trains)"),
    ]


class Screen(io.StringIO):
    encoding = "utf-8"


def _render(width: int = 0, **options) -> str:
    out = Screen()
    report = Terminal(out=out, err=io.StringIO(), colour=False, width=width, **options)
    verdicts = _verdicts()
    for v in verdicts:
        report.verdict(v)
    report.skips(verdicts)
    report.summary(verdicts)
    return out.getvalue()


def test_skips_fold_into_one_line_per_reason_and_v_lists_each():
    text = _render()
    assert [line for line in text.splitlines() if line.startswith("[-]")] == [
        f"[-] {'19 skipped':<{ID_WIDTH}} {CPU_OK} ({', '.join(f'gpu.check{i}' for i in range(19))})",
        f"[-] {'tf.import':<{ID_WIDTH}} skipped by --fast (it imports TensorFlow or trains)",
    ]
    verbose = _render(verbose=True)
    assert sum(1 for line in verbose.splitlines() if line.startswith("[-] gpu.check")) == 19
    assert "19 skipped" not in verbose


def test_lines_wrap_at_the_width_under_the_text_column_and_never_inside_a_word():
    text = _render(width=60)
    column = len("[x] ") + ID_WIDTH + 1
    folded = f"{CPU_OK} ({', '.join(f'gpu.check{i}' for i in range(19))})"
    words = {w for text_ in [v.summary for v in _verdicts()] + [folded] for w in text_.split()}
    body = text.split("\nTo fix:")[0]
    for line in body.splitlines():
        if line.startswith(" "):
            assert line[:column].strip() == "", f"continuation not under the text column: {line!r}"
            assert set(line.split()) <= words, f"a word was broken: {line!r}"
        too_long = len(line) > 60 and len(line.split()[-1]) < 60 - column  # only an unbreakable word may overrun
        assert not too_long, line
    wrapped = [line.strip() for line in body.splitlines() if line.startswith(" " * column)]
    assert " ".join(body.split("cuda.libcudart")[1].split("\n[")[0].split()) == LONG, "all words, in order"
    assert wrapped, "the long summary wrapped"
    assert f"      {CONDA_FIX}" in text.splitlines(), "a fix command is one line, to copy as it is"


def test_every_check_id_fits_the_id_column():
    assert max(len(c.id) for c in all_checks()) <= ID_WIDTH
    line = next(line for line in _render().splitlines() if "container.nvidia-runtime" in line)
    assert line == "[✗] container.nvidia-runtime the nvidia runtime is not registered"


def test_quiet_shows_the_problems_and_the_summary_only():
    text = _render(quiet=True)
    assert "host.os" not in text and "[-]" not in text
    assert "[✗] cuda.libcublas" in text and "[!] python.env" in text and "To fix:" in text


def test_counts_are_plural_only_when_more_than_one():
    assert count_line(_verdicts()) == "1 passed, 1 warning, 3 failed, 20 skipped"
    assert count_line([Verdict("a", Status.ERROR, ""), Verdict("b", Status.ERROR, "")]) == "2 errors"


def test_identical_fixes_show_once_naming_every_check():
    text = _render()
    assert text.count(CONDA_FIX) == 1
    assert "  [✗] cuda.libcudart, cuda.libcublas:" in text


def test_problems_print_as_lines_worst_first_with_each_fix_once():
    problems = Problems(v for v in _verdicts() if v.status in (Status.FAIL, Status.WARN))
    lines = repr(problems).splitlines()
    assert lines[0].startswith("[✗] cuda.libcudart: libcudart.so.11.0") and lines[1] == f"    fix: {CONDA_FIX}"
    assert lines[2:4] == ["[✗] cuda.libcublas: libcublas.so.11 cannot be loaded", "    fix: the same as above"]
    assert lines[-2:] == ["[!] python.env: not inside a conda env", "    fix: conda activate merlin"]
    assert "evidence" not in repr(problems) and "Verdict(" not in repr(problems)
    assert repr(Problems()) == "no problems"
    assert repr(_verdicts()[1]) == "<Verdict python.env warn: not inside a conda env>"


def test_the_cli_wraps_at_columns_and_folds_skips():
    result = doctor("check", "--fast", "--cpu-ok", env={"COLUMNS": "60"})
    lines = result.stdout.split("\nTo fix:")[0].splitlines()
    assert all(len(line) <= 60 or len(line.split()[-1]) > 30 for line in lines), lines
    assert sum(1 for line in lines if re.match(r"\[-\] \d+ skipped", line)) >= 1
    assert not any(line.startswith("[-] gpu.nvml") for line in lines)


def test_a_folded_line_does_not_say_skipped_twice():
    out = Screen()
    report = Terminal(out=out, err=io.StringIO(), colour=False, width=200)
    reason = "skipped: it needs gpu.nvml, which did not pass (fail)"
    report.skips([Verdict(f"gpu.c{i}", Status.SKIP, reason) for i in range(2)] + [Verdict("x.y", Status.SKIP, reason)])
    (line,) = out.getvalue().splitlines()
    assert line == f"[-] {'3 skipped':<{ID_WIDTH}} it needs gpu.nvml, which did not pass (fail) (gpu.c0, gpu.c1, x.y)"
