"""Container recipes: their schema, and judging a run inside the merlin-tensorflow 23.02 image.

tests/fixtures/facts/merlin-tensorflow-23.02.json is shaped like the doctor's facts inside
the image (Python 3.8 at /usr/bin/python, dist-packages, NVIDIA's TF 2.10.1, protobuf
3.20.3, no conda, the image's LD_LIBRARY_PATH with its absent directories).
"""

from __future__ import annotations

import pytest
from conftest import load_fixture

from merlin_doctor import testing
from merlin_doctor.errors import InputError
from merlin_doctor.recipe import load_recipe, parse_recipe
from merlin_doctor.verdict import Status

IN_IMAGE_AREAS = ["host", "python", "packages", "activation", "gpu.nvml", "gpu.driver"]


def judge(snapshot: dict, recipe: str = "merlin-tensorflow-23.02") -> dict:
    return testing.judge(snapshot, recipe, only=IN_IMAGE_AREAS)


@pytest.fixture
def image():
    return load_fixture("merlin-tensorflow-23.02.json")


def test_the_image_is_judged_healthy_without_conda_links_or_activate_scripts(image):
    verdicts = judge(image)
    assert {k: v.status for k, v in verdicts.items() if v.status is not Status.PASS} == {}
    assert verdicts["python.version"].summary == "Python 3.8.10 (==3.8.*)"
    assert verdicts["activation.scripts"].summary == "recipe merlin-tensorflow-23.02 sets no activation variables"
    assert "/usr/local/cuda/nvvm/libdevice/libdevice.10.bc" in verdicts["activation.libdevice"].summary
    assert "absent ones set by the image" in verdicts["activation.ld-path"].summary
    accepted = verdicts["packages.conflicts"].evidence["accepted"]
    assert {(a["package"].split()[0], a["found"]) for a in accepted} == {
        ("tensorflow", "3.20.3"),
        ("tensorboard", "3.20.3"),
    }
    assert verdicts["gpu.driver"].evidence["toolkit_driver"] == "520.61.05", "CUDA 11.8 in the image, not 11.2"


def test_the_same_image_fails_the_conda_recipe(image):
    """Judged against the conda route, the image is the wrong stack: the verdicts say why."""
    verdicts = judge(image, recipe="tf210-cuda112")
    assert verdicts["python.version"].status is Status.FAIL
    assert verdicts["packages.required"].status is Status.SKIP, "its pins cannot install in Python 3.8: no pip fix"
    assert "needs python.version" in verdicts["packages.required"].summary
    assert verdicts["packages.conflicts"].status is Status.FAIL, (
        "protobuf 3.20.3 is accepted only by the image's recipe"
    )


def test_an_unaccepted_conflict_still_fails(image):
    image["probes"]["packages"]["distributions"]["merlin-core"]["requires"].append("pandas<1.3")
    v = judge(image)["packages.conflicts"]
    assert v.status is Status.FAIL and "merlin-core 23.2.0 requires pandas<1.3" in v.summary


def test_outside_the_image_the_fix_is_the_container_command(image):
    image["probes"]["interpreter"]["version"] = "3.11.7"
    v = judge(image)["python.version"]
    assert v.status is Status.FAIL
    assert v.fix.startswith("merlin-doctor container-cmd --recipe merlin-tensorflow-23.02")


def test_missing_libdevice_in_the_image_still_fails(image):
    image["probes"]["activation"]["fallback_libdevice"]["exists"] = False
    assert judge(image)["activation.libdevice"].status is Status.FAIL


def test_later_release_needs_a_newer_driver(image):
    image["probes"]["nvml"]["driver_version"] = "520.61.05"
    assert judge(image)["gpu.driver"].status is Status.PASS
    v = judge(image, recipe="merlin-tensorflow-23.06")["gpu.driver"]
    assert v.status is Status.FAIL and ">= 530.30.02" in v.summary


@pytest.mark.parametrize("name", ["merlin-tensorflow-23.02", "merlin-tensorflow-23.06"])
def test_container_recipes_describe_their_image(name):
    r = load_recipe(name)
    assert r.is_container and r.image == f"nvcr.io/nvidia/merlin/merlin-tensorflow:{name.rsplit('-', 1)[1]}"
    assert not (r.conda_dependencies or r.links or r.activate or r.copies)
    assert r.expect.cuda_runtime and r.expect.tensorrt_soname == "8" and r.expect.tensorrt
    assert any(g.name == "tensorflow" for g in r.pip) and r.sources


BAD = {
    "conda part in a container recipe": (
        "name: x\nkind: container\nimage: a/b:1\nconda:\n  dependencies: [python]\n",
        4,
        "conda: not allowed in a kind: container recipe",
    ),
    "container without image": ("name: x\nkind: container\n", 1, "image: a kind: container recipe names its image"),
    "image in a conda recipe": ("name: x\nimage: a/b:1\n", 2, "image: not allowed in a kind: conda recipe"),
    "unknown kind": ("name: x\nkind: vm\n", 2, "kind: expected one of conda, venv, container"),
    "size not a number": (
        "name: x\nkind: container\nimage: a\nimage_compressed_bytes: 6.49 GB\n",
        4,
        "image_compressed_bytes: expected a positive whole number",
    ),
    "bad tensorrt specifier": ("name: x\nexpect:\n  tensorrt: '8.5'\n", 3, "expect.tensorrt: not a version specifier"),
    "accepted conflict without why": (
        "name: x\naccepted_conflicts:\n  - {package: a, requires: b}\n",
        3,
        "accepted_conflicts[0].why: required key is missing",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_container_recipe_names_file_line_and_key(case):
    text, line, message = BAD[case]
    with pytest.raises(InputError) as err:
        parse_recipe(text, "bad.yml")
    assert (err.value.file, err.value.line) == ("bad.yml", line)
    assert message in str(err.value)


@pytest.mark.parametrize("args", [("setup", "--dry-run"), ("fix", "--dry-run"), ("recipes", "--environment-yml")])
def test_there_is_no_env_to_build_from_a_container_recipe(args):
    from conftest import doctor

    command, flag = args
    name = ["merlin-tensorflow-23.02"] if command == "recipes" else ["--recipe", "merlin-tensorflow-23.02"]
    result = doctor(command, *name, flag)
    assert result.returncode == 2 and result.stdout == ""
    assert "there is no env to build; judge the host with `merlin-doctor check --host" in result.stderr
