"""`explain` on real logs: the development corpus, and one test per kind of paste it used to miss.

tests/data/explain/corpus.jsonl holds short excerpts of logs users posted in public issue
threads, each with its thread's address and the label that the thread's fix gives (not what
`explain` answers). The kind tests below use log lines written for them.
"""

from __future__ import annotations

import codecs
import io
import json
import string
from pathlib import Path
from typing import Dict, List
from unittest import mock

import pytest
from conftest import doctor
from hypothesis import given, settings
from hypothesis import strategies as st

from merlin_doctor import explain
from merlin_doctor.explain import CONFIDENCES, ExplainResult, explain_stream, explain_text, format_text, load_knowledge

CORPUS = Path(__file__).parent / "data" / "explain" / "corpus.jsonl"
FIELDS = {"id", "source", "label", "excerpt", "fix_evidence"}
TOP1_TARGET = 0.95


def _corpus() -> List[Dict[str, str]]:
    with open(CORPUS, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


ROWS = _corpus()
IDS = {s.id for s in load_knowledge().signatures}


def ids(text: str) -> List[str]:
    return [m.id for m in explain_text(text).matches]


def top(text: str) -> explain.Match:
    return explain_text(text).matches[0]


# --------------------------------------------------------------------------- the corpus


def test_corpus_entries_are_sourced_labelled_and_distinct():
    assert len(ROWS) >= 120
    assert len({r["label"] for r in ROWS}) >= 40
    for row in ROWS:
        assert set(row) == FIELDS, row["id"]
        assert row["source"].startswith("https://"), row["id"]
        assert row["label"] in IDS, row["id"]
        assert row["excerpt"].strip() and row["fix_evidence"].strip(), row["id"]
    assert len({r["id"] for r in ROWS}) == len(ROWS)
    assert len({r["excerpt"] for r in ROWS}) == len(ROWS)


def test_top1_on_the_corpus_and_no_confident_wrong_answer():
    top1 = top3 = 0
    confident_wrong = []
    for row in ROWS:
        matches = explain_text(row["excerpt"]).matches
        found = [m.id for m in matches]
        top1 += found[:1] == [row["label"]]
        top3 += row["label"] in found[:3]
        if matches and matches[0].id != row["label"] and matches[0].confidence == "high":
            confident_wrong.append((row["id"], row["label"], matches[0].id))
    print(
        f"\nexplain on {len(ROWS)} real excerpts: top-1 {top1 / len(ROWS):.1%} ({top1}), "
        f"top-3 {top3 / len(ROWS):.1%} ({top3})"
    )
    assert top1 / len(ROWS) >= TOP1_TARGET
    assert not confident_wrong


# --------------------------------------------------------------------------- 1. wording variants


@pytest.mark.parametrize(
    "line",
    [
        "pynvml.nvml.NVMLError_LibRmVersionMismatch: RM has detected an NVML/RM version mismatch.",
        "mytool.nvml.NvmlException: NVML_ERROR_LIB_RM_VERSION_MISMATCH",
        "Failed to initialize NVML: Driver/Library Version Mismatch",
        "Failed to initialize NVML:   Driver/library\tversion   mismatch",
    ],
)
def test_nvml_constants_and_retyped_messages_name_the_driver(line):
    assert top(line).id == "driver-not-loaded" and top(line).confidence == "high"


def test_nvml_library_constant_names_the_missing_driver_library():
    assert ids("NVMLError: NVML_ERROR_LIBRARY_NOT_FOUND")[:1] == ["libcuda-missing"]


# --------------------------------------------------------------------------- 2. prefixes, cut pastes

AIRFLOW = "[2024-02-02, 10:11:12 UTC] {{taskinstance.py:1851}} ERROR - {}"


def test_a_prefixed_merlin_traceback_cut_before_the_error_names_the_failing_layer_as_a_guess():
    log = "\n".join(
        AIRFLOW.format(line)
        for line in [
            "Traceback (most recent call last):",
            '  File "/opt/airflow/dags/train.py", line 3, in <module>',
            "    import nvtabular as nvt",
            '  File "/usr/local/lib/python3.8/site-packages/cudf/__init__.py", line 7, in <module>',
            "    from cudf import core, datasets",
            '  File "/usr/local/lib/python3.8/site-packages/cudf/utils/cudautils.py", line 7, in <module>',
        ]
    )
    match = top(log)
    assert match.id == "numba-too-new" and match.confidence == "low"
    assert match.evidence[0].line == 6
    assert "weak guess" in "\n".join(format_text(explain_text(log)))


@pytest.mark.parametrize(
    "prefix",
    [
        "E       ",
        "trainer_1  | ",
        "(APIServer pid=1) ",
        "[0624 14:45:33 @base.py:209] ",
        "2024-05-08 16:43:33,866 - distributed.worker - ERROR - ",
        "##[error]",
    ],
)
def test_line_prefixes_are_stripped_before_anchored_patterns(prefix):
    log = f"{prefix}>>> tf.config.list_physical_devices('GPU')\n{prefix}[]\n"
    assert ids(log) == ["no-visible-device"]


PREFIXES = [
    "E   ",
    "worker-1  | ",
    "(APIServer pid=7) ",
    "[2024-02-02, 10:11:12 UTC] {taskinstance.py:1851} ERROR - ",
    "2024-05-08 16:43:33,866 - distributed.worker - ERROR - ",
    "##[error]",
    "I0301 10:00:00.123456 140 train.py:12] ",
    "2023-07-19T22:10:31.771093Z ",
    "> ",
    ": ",
]
SAMPLE_LINES = [
    example
    for s in load_knowledge().signatures
    if s.severity != "benign"
    for example in s.examples
    if "\n" not in example and not example.startswith(("[", ">", " ", "#"))
]


@settings(max_examples=200, deadline=None)
@given(
    prefixes=st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=2),
    line=st.sampled_from(SAMPLE_LINES),
    spaces=st.sampled_from([" ", "  ", "\t"]),
)
def test_prefixes_and_spacing_do_not_change_what_a_line_means(prefixes, line, spaces):
    """Any stack of log prefixes in front of a line, and any spacing inside it, names the same causes."""
    varied = "".join(prefixes) + line.replace(" ", spaces, 3)
    assert ids(varied)[:1] == ids(line)[:1]


def test_a_weak_guess_never_heads_a_log_with_a_real_message():
    log = (
        '  File "/opt/conda/lib/python3.8/site-packages/cudf/utils/cudautils.py", line 7, in <module>\n'
        "tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating tensor with shape[8,8]\n"
    )
    result = explain_text(log)
    assert [(m.id, m.confidence) for m in result.matches] == [("gpu-oom", "high"), ("numba-too-new", "low")]


# --------------------------------------------------------------------------- 3. Python-level RAPIDS / Merlin failures


@pytest.mark.parametrize(
    "log, expected",
    [
        ("ModuleNotFoundError: No module named 'pyarrow._cuda'", "pyarrow-cpu-build"),
        (
            "    from numba import cuda, numpy_support\nImportError: cannot import name 'numpy_support' from 'numba'",
            "numba-too-new",
        ),
        ("ModuleNotFoundError: No module named 'keras.utils.tf_inspect'", "keras-tf-mismatch"),
        ("tests/unit/test_x.py:3: in <module>\n    assert is_cudf_available()\nE   AssertionError", "cudf-missing"),
    ],
)
def test_python_level_failures_of_the_rapids_stack(log, expected):
    assert top(log).id == expected and top(log).confidence == "high"


# --------------------------------------------------------------------------- 4. container setup


@pytest.mark.parametrize(
    "line",
    [
        'docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]].',
        "docker: Error response from daemon: Unknown runtime specified nvidia.",
        "ERROR: for trainer  Cannot create container: unknown runtime specified nvidia",
    ],
)
def test_a_missing_container_toolkit_is_not_read_as_a_hidden_device(line):
    log = line + "\nRuntimeError: No CUDA GPUs are available\n"
    assert ids(log)[:1] == ["container-toolkit-missing"]
    assert "no-visible-device" in ids(log)


# --------------------------------------------------------------------------- 5. a symptom read as the cause


def test_exhausted_pinned_host_memory_is_not_gpu_oom():
    log = (
        "W tensorflow/core/common_runtime/device/device_host_allocator.h:46] "
        "could not allocate pinned host memory of size: 2147483648\n"
        "E tensorflow/stream_executor/cuda/cuda_driver.cc:802] "
        "failed to alloc 2147483648 bytes on host: CUDA_ERROR_OUT_OF_MEMORY: out of memory\n"
    )
    assert ids(log) == ["host-oom"]
    device = (
        "I tensorflow/stream_executor/cuda/cuda_driver.cc:733] "
        "failed to allocate 3.0G (3221225472 bytes) from device: CUDA_ERROR_OUT_OF_MEMORY: out of memory"
    )
    assert ids(device) == ["gpu-oom"]


def test_wsl1_heads_the_missing_libcuda_it_causes():
    log = (
        "$ uname -r\n4.4.0-22621-Microsoft\n"
        "W tensorflow/stream_executor/platform/default/dso_loader.cc:64] "
        "Could not load dynamic library 'libcuda.so.1'; dlerror: libcuda.so.1: cannot open shared object file\n"
    )
    assert ids(log)[:2] == ["wsl1-no-gpu", "libcuda-missing"]


def test_condas_system_block_without_its_header_is_a_solver_conflict_or_an_old_glibc():
    block = (
        "The following specifications were found to be incompatible with your system:\n\n"
        "  - feature:/linux-64::__glibc==2.31=0\n"
        "  - mypkg -> libgcc-ng[version='>=9.3.0'] -> __glibc[version='>=2.17']\n\nYour installed version is: 2.31\n"
    )
    assert ids(block)[:1] == ["conda-solver-conflict"]
    old = block.replace("2.31", "2.12")
    assert ids(old)[:1] == ["glibc-too-old"]


def test_nccl_requested_on_windows():
    log = (
        "tensorflow.python.framework.errors_impl.InvalidArgumentError: No OpKernel was registered to support Op "
        "'NcclAllReduce' used by {{node NcclAllReduce}} with these attrs: [num_devices=2]\n"
        '  File "C:\\Users\\me\\train.py", line 9, in <module>\n'
    )
    assert ids(log) == ["nccl-unsupported-windows"]


# --------------------------------------------------------------------------- 6. UTF-32 input

LOG = "E tensorflow/core/kernels/x.cc:9] no kernel image is available for execution on the device\n"


@pytest.mark.parametrize("encoding", ["utf-32", "utf-32-le", "utf-32-be", "utf-16", "utf-16-le", "utf-8"])
def test_a_utf32_or_utf16_log_is_read(encoding):
    text = "日志 epoch 1/3 loss: 0.6931\r\n" * 3 + LOG
    result = explain_stream(io.BytesIO(text.encode(encoding)))
    assert [(m.id, m.evidence[0].line) for m in result.matches] == [("no-kernel-image", 4)]


def _transcoded(raw: bytes, block_size: int) -> bytes:
    with mock.patch.object(explain, "BLOCK_SIZE", block_size):
        return b"".join(explain._blocks(io.BytesIO(raw)))


@settings(max_examples=150, deadline=None)
@given(text=st.text(st.characters(blacklist_categories=("Cs",))), block=st.integers(1, 64))
def test_any_text_with_a_utf32_bom_is_transcoded_to_utf8(text, block):
    assert _transcoded(text.encode("utf-32"), block) == text.encode("utf-8")


@settings(max_examples=150, deadline=None)
@given(
    ascii_part=st.text(string.printable, min_size=64, max_size=300),
    other=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20),
    block=st.integers(1, 64),
    encoding=st.sampled_from(["utf-32-le", "utf-32-be", "utf-16"]),
)
def test_mostly_ascii_utf32_without_a_bom_or_utf16_is_recognised(ascii_part, other, block, encoding):
    text = ascii_part + other
    assert _transcoded(text.encode(encoding), block) == text.encode("utf-8")


@settings(max_examples=150, deadline=None)
@given(text=st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))))
def test_utf8_without_nul_bytes_is_left_alone(text):
    raw = text.encode("utf-8")
    assert explain._wide_decoder(raw) is None or raw[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


# --------------------------------------------------------------------------- confidence in the output


def test_confidence_is_in_the_json_beside_the_existing_keys():
    data = explain_text("RuntimeError: No CUDA GPUs are available\n").to_dict()
    match = data["matches"][0]
    assert set(match) == {
        "id",
        "title",
        "severity",
        "cause",
        "fix",
        "check",
        "step",
        "source",
        "evidence",
        "evidence_count",
        "confidence",
    }
    assert match["confidence"] == "medium" and match["confidence"] in CONFIDENCES


def test_cli_marks_a_weak_guess(tmp_path):
    log = tmp_path / "cut.log"
    log.write_text('  File "/opt/conda/lib/python3.8/site-packages/cudf/utils/cudautils.py", line 7, in <module>\n')
    human = doctor("explain", str(log))
    assert human.returncode == 1 and "(numba-too-new, fatal, weak guess)" in human.stdout
    assert "confidence: low, a weak guess" in human.stdout
    machine = json.loads(doctor("explain", str(log), "--json").stdout)
    assert machine["matches"][0]["confidence"] == "low"


def test_a_result_ranks_by_confidence_only_for_weak_guesses():
    result: ExplainResult = explain_text("KilledWorker: ('x', 1)\nRuntimeError: No CUDA GPUs are available\n")
    assert [m.confidence for m in result.matches] == ["high", "medium"]
