"""Each TensorFlow verdict names the cause of what failed in *its* step (issue 14, item 1).

The facts are shaped as the child writes them: a `MERLIN-DOCTOR-STEP` marker before each
part on stderr (`probes/tensorflow.with_steps` turns them into `steps`), and a failed part's
exception with its type and whole message. The log lines are TensorFlow 2.10's own (the
CPU machine's, captured in tests/fixtures/facts/tf-probes-cpu-py39.json).
"""

from __future__ import annotations

import copy
import json
import os

import pytest
from conftest import REPO, doctor, load_fixture
from hypothesis import given
from hypothesis import strategies as st

from merlin_doctor.checks import all_checks
from merlin_doctor.facts import Facts
from merlin_doctor.options import CheckOptions
from merlin_doctor.probes.child_io import STEP_PREFIX, headline
from merlin_doctor.probes.tensorflow import with_steps
from merlin_doctor.recipe import load_recipe
from merlin_doctor.runner import run_checks, select_checks
from merlin_doctor.verdict import Status

CUDART = (
    "2026-11-28 08:56:57.230654: W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not "
    "load dynamic library 'libcudart.so.11.0'; dlerror: libcudart.so.11.0: cannot open shared object file: "
    "No such file or directory"
)
CUDART_HINT = (
    "2026-11-28 08:56:57.230685: I tensorflow/stream_executor/cuda/cudart_stub.cc:29] Ignore above cudart "
    "dlerror if you do not have a GPU set up on your machine."
)
LIBCUDA = [
    "2026-11-28 08:56:58.758170: W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not "
    "load dynamic library 'libcuda.so.1'; dlerror: libcuda.so.1: cannot open shared object file: No such file "
    "or directory",
    "2026-11-28 08:56:58.758204: W tensorflow/stream_executor/cuda/cuda_driver.cc:263] failed call to cuInit: "
    "UNKNOWN ERROR (303)",
]
NVINFER = [
    "2026-11-28 08:56:58.917663: W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load "
    "dynamic library 'libnvinfer.so.7'; dlerror: libnvinfer.so.7: cannot open shared object file: No such "
    "file or directory",
    "2026-11-28 08:56:58.917735: W tensorflow/compiler/tf2tensorrt/utils/py_utils.cc:38] TF-TRT Warning: "
    "Cannot dlopen some TensorRT libraries. If you would like to use Nvidia GPU with TensorRT, please make "
    "sure the missing libraries mentioned above are installed properly.",
]
PROTOBUF = (
    "Descriptors cannot not be created directly.\nIf this call came from a _pb2.py file, your generated code "
    "is out of date and must be regenerated with protoc >= 3.19.0.\nIf you cannot immediately regenerate "
    "your protos, some other possible workarounds are:\n 1. Downgrade the protobuf package to 3.20.x or "
    "lower.\n 2. Set PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python (but this will use pure-Python parsing "
    "and will be much slower)."
)


def marked(steps: dict) -> list:
    """A child's stderr: each step's marker, then the lines it wrote."""
    return [line for name, lines in steps.items() for line in [STEP_PREFIX + name] + lines] + [STEP_PREFIX + "end"]


def failure(exc_type: str, message: str) -> dict:
    first = message.splitlines()[0]
    return {"ok": False, "error": f"{exc_type}: {first}", "exception": {"type": exc_type, "message": message}}


@pytest.fixture
def tf_cpu():
    return load_fixture("tf-probes-cpu-py39.json")


def judge(probes: dict, recipe: str, only=("tf", "e2e", "gpu.nvml"), **options) -> dict:
    checks = select_checks(all_checks(), only=list(only))
    verdicts = run_checks(checks, Facts(probes), load_recipe(recipe), CheckOptions(**options))
    return {v.id: v for v in verdicts}


def cpu_machine(tf: dict, e2e: dict) -> dict:
    return {"tensorflow": tf, "e2e": e2e, "nvml": {"loaded": False, "error": "NVML Shared Library Not Found"}}


def protobuf_facts(tf_cpu) -> dict:
    tf = copy.deepcopy(tf_cpu["tensorflow"])
    tf["import"] = failure("TypeError", PROTOBUF)
    tf["log"] = marked({"import": [CUDART, CUDART_HINT]})
    return with_steps(tf)


@pytest.mark.parametrize("recipe, options", [("cpu", {}), ("tf210-cuda112", {"cpu_ok": True}), ("tf210-cuda112", {})])
def test_protobuf_is_the_cause_of_a_failed_import_not_the_cuda_warnings_beside_it(tf_cpu, recipe, options):
    v = judge(cpu_machine(protobuf_facts(tf_cpu), tf_cpu["e2e"]), recipe, **options)["tf.import"]
    assert v.status is Status.FAIL
    assert v.summary.startswith("import tensorflow failed: TypeError: Descriptors cannot not be created directly.")
    assert "\n" not in v.summary, "one line in the stream; the whole message is evidence"
    ids = [e["id"] for e in v.evidence["explained"]]
    assert ids[0] == "protobuf-too-new" and "(protobuf-too-new)" in v.summary
    assert "protobuf" in v.fix and "cudatoolkit" not in v.fix
    assert "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION" in v.evidence["exception"]["message"]


def test_a_cpu_machine_never_gets_a_gpu_cause(tf_cpu):
    """The import step logs libcudart warnings on any CPU machine: never the cause there."""
    tf = protobuf_facts(tf_cpu)
    tf["import"] = failure("ImportError", "something unrelated broke")
    v = judge(cpu_machine(tf, tf_cpu["e2e"]), "tf210-cuda112", cpu_ok=True)["tf.import"]
    assert v.evidence["explained"] == [] and "cuda" not in v.summary.lower()
    gpu = judge(cpu_machine(tf, tf_cpu["e2e"]), "tf210-cuda112")["tf.import"]
    assert [e["id"] for e in gpu.evidence["explained"]] == ["cuda-libs-missing"], "on a GPU recipe it may be"


def test_a_missing_merlin_module_is_the_cause_and_the_fix_installs_its_pin(tf_cpu):
    tf = copy.deepcopy(tf_cpu["tensorflow"])
    tf["imports"]["nvtabular"] = failure("ModuleNotFoundError", "No module named 'merlin.dataloader'")
    tf["log"] = marked(
        {"import": [CUDART, CUDART_HINT], "devices": LIBCUDA, "tests.tensorrt": NVINFER, "imports.nvtabular": []}
    )
    for recipe, options in (("cpu", {}), ("tf210-cuda112", {"cpu_ok": True}), ("tf210-cuda112", {})):
        v = judge(cpu_machine(with_steps(copy.deepcopy(tf)), tf_cpu["e2e"]), recipe, **options)["tf.merlin-imports"]
        assert v.status is Status.FAIL
        assert v.summary == ("import nvtabular failed: ModuleNotFoundError: No module named 'merlin.dataloader'"), (
            v.summary
        )
        assert v.fix == "python -m pip install merlin-dataloader==23.8.0", v.fix


def test_a_failed_step_is_explained_by_its_own_lines_on_a_gpu_recipe(tf_cpu):
    """A GPU sub-test that failed is explained by what it logged, not by the import's warnings."""
    probes = load_fixture("gpu-t4-healthy.json")["probes"]
    tf = copy.deepcopy(tf_cpu["tensorflow"])
    tf["tests"]["xla"] = failure("InternalError", "libdevice not found at ./libdevice.10.bc")
    tf["log"] = marked(
        {
            "import": [CUDART],
            "devices": LIBCUDA,
            "tests.xla": [
                "2026-11-28 09:00:00.000000: W tensorflow/compiler/xla/service/gpu/"
                "nvptx_helper.cc:56] Can't find libdevice directory ${CUDA_DIR}/nvvm/libdevice. "
                "This may result in compilation or runtime failures, if the program we try to "
                "run uses routines from libdevice."
            ],
        }
    )
    probes.update(tensorflow=with_steps(tf), e2e=tf_cpu["e2e"])
    v = judge(probes, "tf210-cuda112", only=("tf.xla",))["tf.xla"]
    assert v.status is Status.FAIL
    assert [e["id"] for e in v.evidence["explained"]] == ["libdevice-missing"]


def tensorrt_machine(tf_cpu, nvinfer_loaded: bool) -> dict:
    """The T4 workstation; TF's TensorRT step logs libnvinfer lines, its devices step libcuda ones."""
    probes = load_fixture("gpu-t4-healthy.json")["probes"]
    probes = copy.deepcopy(probes)
    tf = copy.deepcopy(tf_cpu["tensorflow"])
    tf["log"] = marked({"import": [CUDART] + NVINFER, "devices": LIBCUDA, "tests.tensorrt": NVINFER})
    probes.update(tensorflow=with_steps(tf), e2e=tf_cpu["e2e"])
    for lib in probes["cuda_libs"]["libraries"]:
        if lib["soname"].startswith("libnvinfer"):
            so8 = lib["soname"].replace(".so.7", ".so.8")
            lib.update(
                loaded=nvinfer_loaded,
                version="7.2.2" if nvinfer_loaded else None,
                path=f"/env/lib/{lib['soname']}" if nvinfer_loaded else None,
                other_sonames=[] if nvinfer_loaded else [{"soname": so8, "path": f"/env/site/tensorrt/{so8}"}],
                error=None if nvinfer_loaded else f"{lib['soname']}: cannot open shared object file",
            )
    return probes


def test_tensorrt_links_missing_are_named_by_cuda_tensorrt_and_tf_tensorrt_agrees(tf_cpu):
    v = judge(tensorrt_machine(tf_cpu, nvinfer_loaded=False), "tf210-cuda112", only=("tf.tensorrt",))
    assert v["cuda.tensorrt"].status is Status.FAIL and "libnvinfer.so.7 is missing" in v["cuda.tensorrt"].summary
    assert v["tf.tensorrt"].status is Status.SKIP and "cuda.tensorrt" in v["tf.tensorrt"].summary
    assert "libcuda" not in v["tf.tensorrt"].summary


def test_tf_tensorrt_explains_from_its_own_step(tf_cpu):
    """TensorRT loads for the probe but not for TensorFlow: the TensorRT lines say why, not libcuda's."""
    v = judge(tensorrt_machine(tf_cpu, nvinfer_loaded=True), "tf210-cuda112", only=("tf.tensorrt",))["tf.tensorrt"]
    assert v.status is Status.WARN
    assert [e["id"] for e in v.evidence["explained"]] == ["tensorrt-missing"], v.evidence["explained"]


def test_tf_tensorrt_skips_where_tf_gpus_does(tf_cpu):
    """No GPU stack (NVML does not load) on a GPU recipe: both TensorFlow GPU checks skip."""
    v = judge(cpu_machine(tf_cpu["tensorflow"], tf_cpu["e2e"]) | {"cuda_libs": {"libraries": []}}, "tf210-cuda112")
    assert v["tf.gpus"].status is Status.SKIP and v["tf.tensorrt"].status is Status.SKIP
    assert "gpu.nvml" in v["tf.gpus"].summary and "gpu.nvml" in v["tf.tensorrt"].summary


def test_with_steps_keeps_the_step_a_dead_child_was_in():
    result = with_steps(
        {
            "error": "the child process was killed by SIGSEGV",
            "log": marked({"import": ["a"], "devices": ["b", "c"]})[:-1],
        }
    )
    assert result["log"] == ["a", "b", "c"]
    assert result["steps"] == [{"step": "import", "start": 0, "end": 1}, {"step": "devices", "start": 1, "end": 3}]


@pytest.mark.slow
def test_live_child_marks_its_steps_and_blames_the_missing_module(tf_python, tmp_path):
    """The real child under TF 2.10 with merlin.dataloader made unimportable (as if uninstalled)."""
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "class Gone:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'merlin.dataloader' or name.startswith('merlin.dataloader.'):\n"
        '            raise ModuleNotFoundError(f"No module named {name!r}", name=name)\n'
        "sys.meta_path.insert(0, Gone())\n"
    )
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    result = doctor(
        "check",
        "--recipe",
        "cpu",
        "--cpu-ok",
        "--json",
        "--only",
        "tf.merlin-imports",
        python=tf_python,
        env=env,
        timeout=600,
    )
    data = json.loads(result.stdout)
    v = next(x for x in data["verdicts"] if x["id"] == "tf.merlin-imports")
    assert v["status"] == "fail", v
    assert v["summary"] == "import merlin.models.tf failed: ModuleNotFoundError: No module named 'merlin.dataloader'"
    assert v["fix"] == "python -m pip install merlin-dataloader==23.8.0"
    steps = [s["step"] for s in data["facts"]["probes"]["tensorflow"]["steps"]]
    assert steps[:3] == ["import", "build_info", "devices"] and "imports.merlin.models.tf" in steps
    assert not any(line.startswith(STEP_PREFIX) for line in data["facts"]["probes"]["tensorflow"]["log"])


line_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=30).filter(
    lambda t: not t.startswith(STEP_PREFIX)
)


@given(
    st.lists(
        st.tuples(st.from_regex(r"[a-z]+(\.[a-z]+)?", fullmatch=True), st.lists(line_text, max_size=4)),
        max_size=5,
        unique_by=lambda step: step[0],
    )
)
def test_with_steps_gives_each_step_exactly_its_own_lines(steps):
    """A step runs once; whatever its lines say, they are its own and no other step's."""
    result = with_steps({"log": marked(dict(steps))})
    kept = [(name, lines) for name, lines in steps if name != "end"]
    assert [s["step"] for s in result["steps"]] == [name for name, _ in kept]
    for s, (_, lines) in zip(result["steps"], kept):
        assert result["log"][s["start"] : s["end"]] == lines


@given(st.from_regex(r"[A-Z][A-Za-z]*Error", fullmatch=True), st.text(max_size=200))
def test_an_exception_headline_is_one_line(exc_type, message):
    line = headline(exc_type, message)
    assert "\n" not in line and "\r" not in line and line.startswith(exc_type)
