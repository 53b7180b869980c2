"""`merlin-doctor explain`: the knowledge base, the matcher's ranking, robust reading, the CLI.

Logs here are written for these tests (tests/data/explain/*.log and the `examples` in the
signatures file); one test runs the real CPU TensorFlow 2.10 on this machine and explains its output.
"""

from __future__ import annotations

import codecs
import io
import json
import re
import subprocess
import tracemalloc
from pathlib import Path
from typing import Iterator, List

import pytest
import yaml
from conftest import doctor

from merlin_doctor import knowledge
from merlin_doctor.explain import (
    MAX_LINE,
    SignatureError,
    compile_knowledge,
    explain_lines,
    explain_stream,
    explain_text,
    format_text,
    load_knowledge,
)

DATA = Path(__file__).parent / "data" / "explain"
VOCABULARY = [
    "tensorrt-missing",
    "libdevice-missing",
    "ptxas-missing",
    "cudnn-version-mismatch",
    "cudnn-missing",
    "cudnn-init-failed",
    "driver-too-old",
    "driver-not-loaded",
    "cuda-init-unknown",
    "no-visible-device",
    "libcuda-missing",
    "cuda-libs-missing",
    "protobuf-too-new",
    "gpu-oom",
    "numa-benign",
    "ptx-unsupported",
    "no-kernel-image",
    "cudf-missing",
    "rapids-cpu-fallback",
    "cupy-duplicate",
    "glibcxx-mismatch",
    "glibc-too-old",
]
KB = load_knowledge()
SIGNATURES = {s.id: s for s in KB.signatures}
TF_LINE = "2024-06-01 10:00:00.000001: W tensorflow/stream_executor/platform/default/dso_loader.cc:64] "


def ids(text: str) -> List[str]:
    return [m.id for m in explain_text(text).matches]


# --------------------------------------------------------------------------- knowledge base


def test_knowledge_base_holds_the_vocabulary_and_enough_entries():
    assert set(VOCABULARY) <= set(SIGNATURES)
    assert len(SIGNATURES) >= 30
    assert {s.severity for s in KB.signatures} == {"fatal", "error", "warning", "benign"}
    assert sum(s.severity == "benign" for s in KB.signatures) >= 4
    for sig in KB.signatures:
        assert sig.source.startswith("https://"), sig.id
        assert sig.examples, f"{sig.id} has no example"


def test_check_and_step_links_name_real_checks_and_steps():
    from merlin_doctor.checks import all_checks
    from merlin_doctor.setup.steps import STEP_IDS

    checks = {c.id for c in all_checks()}
    assert {s.check for s in KB.signatures if s.check} <= checks
    assert {s.step for s in KB.signatures if s.step} <= set(STEP_IDS)


@pytest.mark.parametrize("sig_id", sorted(SIGNATURES))
def test_each_example_makes_its_entry_the_headline(sig_id):
    for example in SIGNATURES[sig_id].examples:
        assert ids(example)[:1] == [sig_id], example


def _regex_sources(pattern) -> List[str]:
    return [pattern] if isinstance(pattern, str) else pattern["all"] + pattern.get("none", [])


def test_every_regex_is_reached_through_the_keywords_by_some_example():
    """The prefilter only lets a line reach an entry through one of its keywords: a regex whose
    lines never carry one would be dead. Every regex must match an example line that does."""
    examples = [line for s in KB.signatures for ex in s.examples for line in ex.splitlines()]
    from merlin_doctor.explain import _views

    views = [(line.encode(), [body for _, body, _ in _views(line.encode())]) for line in examples]
    dead = []
    for entry in knowledge.load("signatures")["signatures"]:
        keywords = [k.encode() for k in entry["keywords"]]
        sources = (
            [src for p in entry["patterns"] for src in _regex_sources(p)]
            + entry.get("none", [])
            + entry.get("weak", [])
        )
        for source in sources:
            regex = re.compile(source, re.IGNORECASE)
            if not any(
                any(k in raw for k in keywords) and any(regex.search(b) for b in bodies) for raw, bodies in views
            ):
                dead.append(f"{entry['id']}: {source}")
    assert not dead


def _entry(**overrides) -> dict:
    entry = {
        "id": "x-broken",
        "title": "t",
        "severity": "error",
        "keywords": ["Boom"],
        "patterns": ["Boom"],
        "cause": "c",
        "fix": "f",
        "source": "https://example.org",
    }
    entry.update(overrides)
    return entry


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"patterns": ["Boom("]}, r": bad regex 'Boom\('"),
        ({"severity": "severe"}, r": severity must be one of"),
        ({"explains": ["nowhere"]}, r" explains unknown id\(s\) nowhere"),
        ({"colour": "red"}, r": unknown key\(s\) colour"),
        ({"keywords": []}, r": 'keywords' is empty"),
        ({"patterns": [{"none": ["x"]}]}, r": a pattern is a regex or a mapping with 'all'"),
    ],
)
def test_a_malformed_signature_names_the_file_and_the_entry(overrides, message):
    with pytest.raises(SignatureError, match=r"^sigs\.yml: signature 'x-broken'" + message):
        compile_knowledge({"signatures": [_entry(**overrides)]}, "sigs.yml")


def test_missing_fields_and_cycles_are_rejected():
    entry = _entry()
    del entry["fix"]
    with pytest.raises(SignatureError, match=r"sigs\.yml: signature 'x-broken': missing 'fix'"):
        compile_knowledge({"signatures": [entry]}, "sigs.yml")
    cycle = [_entry(id="a-one", explains=["b-two"]), _entry(id="b-two", explains=["a-one"])]
    with pytest.raises(SignatureError, match=r"cycle: a-one -> b-two -> a-one"):
        compile_knowledge({"signatures": cycle}, "sigs.yml")
    with pytest.raises(SignatureError, match=r"sigs\.yml: signature #1: expected a mapping"):
        compile_knowledge({"signatures": ["not a mapping"]}, "sigs.yml")


def test_groups_need_every_member_somewhere_and_none_rules_out():
    kb = compile_knowledge(
        {
            "signatures": [
                _entry(
                    id="a-pair",
                    keywords=["Alpha", "Beta", "Gamma"],
                    patterns=[{"all": ["Alpha", "Beta"], "none": ["Gamma"]}],
                ),
                _entry(id="b-vetoed", keywords=["Boom", "Fine"], patterns=["Boom"], none=["Fine"]),
            ]
        },
        "sigs.yml",
    )

    def found(text: str) -> List[str]:
        return [m.id for m in explain_stream(io.BytesIO(text.encode()), kb).matches]

    assert found("Alpha here\nnoise\nBeta there\nBoom") == ["a-pair", "b-vetoed"]
    assert found("Alpha\nBeta\nGamma\nBoom\nall Fine") == []
    assert found("Alpha only") == []


def test_the_packaged_file_is_valid_yaml_with_sources():
    data = yaml.safe_load((knowledge.KNOWLEDGE_DIR / "signatures.yml").read_text(encoding="utf-8"))
    assert data["source"] and len(data["signatures"]) == len(SIGNATURES)


# --------------------------------------------------------------------------- ranking


def test_a_missing_libcuda_explains_the_cuinit_failure_and_the_empty_gpu_list():
    log = "\n".join(
        [
            TF_LINE
            + "Could not load dynamic library 'libcuda.so.1'; dlerror: libcuda.so.1: cannot open shared object file",
            "W tensorflow/stream_executor/cuda/cuda_driver.cc:269] failed call to cuInit: UNKNOWN ERROR (303)",
            "E tensorflow/stream_executor/cuda/cuda_driver.cc:271] failed call to cuInit: CUDA_ERROR_NO_DEVICE",
            ">>> tf.config.list_physical_devices('GPU')",
            "[]",
        ]
    )
    assert ids(log) == ["libcuda-missing", "no-visible-device"]


def test_a_failed_libcudart_load_explains_skipping_the_gpu():
    log = "\n".join(
        [
            TF_LINE
            + "Could not load dynamic library 'libcudart.so.11.0'; dlerror: libcudart.so.11.0: cannot open shared object file",
            "W tensorflow/core/common_runtime/gpu/gpu_device.cc:1850] Cannot dlopen some GPU libraries. Skipping registering GPU devices...",
        ]
    )
    result = explain_text(log)
    assert [m.id for m in result.matches] == ["cuda-libs-missing"]
    assert [e.line for e in result.matches[0].evidence] == [1, 2]


def test_skipping_the_gpu_with_only_cudnn_missing_is_blamed_on_cudnn():
    log = "\n".join(
        [
            TF_LINE
            + "Could not load dynamic library 'libcudnn.so.8'; dlerror: libcudnn.so.8: cannot open shared object file",
            "W tensorflow/core/common_runtime/gpu/gpu_device.cc:1850] Cannot dlopen some GPU libraries. Skipping registering GPU devices...",
        ]
    )
    assert ids(log) == ["cudnn-missing"]


def test_the_driver_diagnostic_yields_to_a_more_specific_init_error():
    diagnostic = "I tensorflow/stream_executor/cuda/cuda_diagnostics.cc:156] kernel driver does not appear to be running on this host (h): /proc/driver/nvidia/version does not exist"
    assert ids(diagnostic) == ["driver-not-loaded"]
    unknown = (
        "E tensorflow/stream_executor/cuda/cuda_driver.cc:328] failed call to cuInit: CUDA_ERROR_UNKNOWN: unknown error"
    )
    assert ids(unknown + "\n" + diagnostic) == ["cuda-init-unknown"]


def test_a_cudnn_handle_failure_outranks_the_allocation_warnings_before_it():
    result = explain_text((DATA / "cudnn_handle_oom.log").read_text())
    assert [m.id for m in result.failures] == ["cudnn-init-failed"]
    assert [e.line for e in result.matches[0].evidence] == [3, 4, 5, 6, 11]


def test_benign_is_never_ranked_above_a_failure_and_alone_exits_zero():
    benign_first = "\n".join(
        ["I x.cc:1] successful NUMA node read from SysFS had negative value (-1)"] * 50
        + ["TF-TRT Warning: Could not find TensorRT"]
    )
    result = explain_text(benign_first)
    assert [m.id for m in result.matches] == ["tensorrt-missing", "numa-benign"]
    assert result.exit_code == 1 and [m.id for m in result.benign] == ["numa-benign"]
    only_benign = explain_text((DATA / "benign_gpu_session.log").read_text())
    assert only_benign.matches and not only_benign.failures and only_benign.exit_code == 0


def test_tree_order_puts_what_a_root_explains_right_after_it():
    result = explain_stream(io.BytesIO((DATA / "jupyter_no_activation.log").read_bytes()))
    assert [m.id for m in result.failures] == ["cuda-libs-missing", "cudnn-missing", "tensorrt-missing"]
    assert [m.id for m in result.benign] == ["numa-benign", "cudart-dlerror-hint", "cpu-features-benign"]


def test_specific_package_conflicts_outrank_the_generic_pip_report():
    result = explain_text((DATA / "pip_conflicts.log").read_text())
    assert [m.id for m in result.matches] == ["protobuf-too-new", "pip-resolver-conflict", "numpy-too-new"]
    assert result.matches[0].evidence[0].line == 9


def test_a_quoted_issue_paste_is_matched_through_its_markdown():
    result = explain_text((DATA / "issue_quoted_driver.log").read_text())
    assert [m.id for m in result.matches] == ["driver-not-loaded", "no-visible-device"]
    assert result.matches[1].evidence[0].text.startswith("2023-07-19 22:10:31.771093: E tensorflow")


def test_an_empty_gpu_list_after_installing_cuda_with_conda_is_the_library_path():
    log = (
        "conda install -c conda-forge cudatoolkit=11.2 cudnn=8.1\n"
        "$ python -c \"import tensorflow as tf; print(tf.config.list_physical_devices('GPU'))\"\n[]\n"
    )
    assert ids(log) == ["cuda-libs-missing", "no-visible-device"]
    assert ids("Out[4]: []\n") == [] and ids(">>> tf.config.list_physical_devices('GPU')\n[]") == ["no-visible-device"]
    absl = "gpus = tf.config.list_physical_devices('GPU')\nI0301 10:00:00.123456 140 train.py:12] []\nOut[7]: []"
    assert [e.line for e in explain_text(absl).matches[0].evidence] == [1, 2, 3]


# --------------------------------------------------------------------------- reading


def test_bad_bytes_escapes_nul_and_crlf_are_cleaned_from_evidence():
    raw = (
        b"\xff\xfe\x00garbage \xc3\x28 line\r\n"
        b"\x1b[1;31m" + TF_LINE.encode() + b"Could not load dynamic library 'libcublas.so.11';\x00 dlerror\x1b[0m\r\n"
        b"\x1b]0;window title\x07TF-TRT Warning: Could not find TensorRT\r\n"
    )
    result = explain_stream(io.BytesIO(raw))
    assert [m.id for m in result.matches] == ["cuda-libs-missing", "tensorrt-missing"]
    evidence = [e for m in result.matches for e in m.evidence]
    assert [e.line for e in evidence] == [2, 3]
    for e in evidence:
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", e.text), repr(e.text)
    assert evidence[0].text.endswith("'libcublas.so.11'; dlerror")


def test_escapes_written_as_text_and_html_entities_are_undone():
    notebook = r'"\u001b[0;31mResourceExhaustedError\u001b[0m: OOM when allocating tensor with shape[64,512]",'
    html_page = "W dso_loader.cc:64] Could not load dynamic library &#39;libcudart.so.11.0&#39;; dlerror: &lt;none&gt;"
    result = explain_text(notebook + "\n" + html_page)
    assert [m.id for m in result.matches] == ["gpu-oom", "cuda-libs-missing"]
    assert result.matches[0].evidence[0].text.startswith('"ResourceExhaustedError: OOM when allocating')
    assert "'libcudart.so.11.0'; dlerror: <none>" in result.matches[1].evidence[0].text


def test_a_utf16_log_from_powershell_is_read():
    text = "Epoch 1/3\r\nI x.cc:1] ok\r\nF tensorflow/core/kernels/x.cc:9] no kernel image is available for execution on the device\r\n"
    result = explain_stream(io.BytesIO(codecs.BOM_UTF16_LE + text.encode("utf-16-le")))
    assert [(m.id, m.evidence[0].line) for m in result.matches] == [("no-kernel-image", 3)]


def test_long_lines_and_a_missing_final_newline_keep_line_numbers():
    raw = b"x" * (3 * MAX_LINE) + b"\n" + b"y" * 10 + b"\nRuntimeError: No CUDA GPUs are available"
    result = explain_stream(io.BytesIO(raw))
    assert result.lines == 3
    assert [(m.id, m.evidence[0].line) for m in result.matches] == [("no-visible-device", 3)]
    endless = b"z" * (5 * MAX_LINE) + b" Illegal instruction (core dumped)"
    match = explain_stream(io.BytesIO(endless)).matches[0]
    assert match.id == "cpu-instructions-missing" and match.evidence[0].line == 1
    assert len(match.evidence[0].text) < 400


class _Repeating(io.RawIOBase):
    """A large log produced on the fly, so the test itself holds none of it in memory."""

    def __init__(self, chunk: bytes, times: int, tail: bytes):
        self.parts: Iterator[bytes] = iter([chunk] * times + [tail])
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.pending:
            self.pending = next(self.parts, b"")
            if not self.pending:
                return 0
        size = min(len(buffer), len(self.pending))
        buffer[:size], self.pending = self.pending[:size], self.pending[size:]
        return size


def test_memory_stays_flat_on_a_large_log():
    noise = b"".join(
        b"  %4d/5000 [==>....] - ETA: 1:0%d - loss: 0.693%d - auc: 0.51\n" % (i, i % 10, i % 7) for i in range(2000)
    )
    noise += b"I x.cc:1] successful NUMA node read from SysFS had negative value (-1)\n"
    times = (48 << 20) // len(noise)
    tail = b"tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating tensor\n"
    tracemalloc.start()
    try:
        result = explain_stream(io.BufferedReader(_Repeating(noise, times, tail)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"peak {peak >> 20} MiB for a {len(noise) * times >> 20} MiB log"
    assert result.lines == 2001 * times + 1
    assert [m.id for m in result.matches] == ["gpu-oom", "numa-benign"]
    assert result.matches[0].evidence[0].line == result.lines
    assert result.matches[1].evidence_count == times


def test_explain_lines_matches_explain_text():
    lines = (DATA / "wsl_libcuda.log").read_text().splitlines(keepends=True)
    assert explain_lines(lines).to_dict() == explain_text("".join(lines)).to_dict()


def test_json_shape():
    data = explain_text((DATA / "wsl_libcuda.log").read_text()).to_dict()
    assert data["schema_version"] == 1
    top = data["matches"][0]
    assert set(top) >= {"id", "title", "severity", "cause", "fix", "evidence", "source", "check", "step"}
    assert top["id"] == "libcuda-missing" and top["evidence"][0] == {"line": 3, "text": top["evidence"][0]["text"]}
    json.dumps(data)


def test_human_text_hides_benign_unless_asked():
    result = explain_text((DATA / "wsl_libcuda.log").read_text())
    text = "\n".join(format_text(result))
    assert "The NVIDIA driver library (libcuda.so.1) cannot be loaded" in text
    assert "         3: 2024-01-20 18:02:46.112093: W tensorflow" in text
    assert "cpu-features-benign" in text and "CPU instruction set notice" not in text
    assert "CPU instruction set notice" in "\n".join(format_text(result, show_all=True))
    assert format_text(explain_text("all good\n")) == ["No known problem recognised in 1 line."]


# --------------------------------------------------------------------------- CLI


def test_cli_explains_a_file_with_exit_code_one():
    result = doctor("explain", str(DATA / "jupyter_no_activation.log"))
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("3 problems recognised in 17 lines, the likely root cause first:")
    assert "TensorFlow cannot load the CUDA runtime libraries  (cuda-libs-missing, error)" in result.stdout
    assert "\x1b" not in result.stdout and "\r" not in result.stdout


def test_cli_json_is_pure_json_and_all_shows_benign():
    result = doctor("explain", str(DATA / "benign_gpu_session.log"), "--json")
    assert result.returncode == 0
    assert [m["severity"] for m in json.loads(result.stdout)["matches"]] == ["benign"] * 3
    shown = doctor("explain", "--all", str(DATA / "benign_gpu_session.log"))
    assert shown.returncode == 0 and "NUMA node notice (harmless)" in shown.stdout


def test_cli_reads_stdin():
    result = doctor("explain", "-", "--json", stdin=(DATA / "pip_conflicts.log").read_text())
    assert result.returncode == 1
    assert json.loads(result.stdout)["matches"][0]["id"] == "protobuf-too-new"


def test_cli_unreadable_input_is_one_line_and_exit_two(tmp_path):
    for target in (tmp_path / "missing.log", tmp_path):
        result = doctor("explain", str(target))
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert str(target) in result.stderr and result.stdout == ""


@pytest.mark.slow
def test_a_real_tensorflow_log_from_this_machine(tf_python):
    """TensorFlow 2.10 on this GPU-less machine: no CUDA runtime, no TensorRT, no driver."""
    run = subprocess.run(
        [tf_python, "-c", "import tensorflow as tf; print(tf.config.list_physical_devices('GPU'))"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    result = explain_lines((run.stderr + run.stdout).splitlines())
    found = {m.id: m for m in result.matches}
    assert {"cuda-libs-missing", "tensorrt-missing"} <= set(found)
    assert any("libcudart.so.11.0" in e.text for e in found["cuda-libs-missing"].evidence)
    assert any("libnvinfer.so.7" in e.text for e in found["tensorrt-missing"].evidence)
    assert result.matches[0].severity != "benign" and result.exit_code == 1
