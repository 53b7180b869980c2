"""Recipes: the built-in ones load and agree with each other; bad ones fail with file and line."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import REPO, doctor
from hypothesis import given
from hypothesis import strategies as st
from packaging.utils import canonicalize_name
from packaging.version import Version

from merlin_doctor.errors import InputError
from merlin_doctor.recipe import (
    available_recipes,
    conda_environment,
    conda_spec,
    load_recipe,
    parse_recipe,
)


@pytest.mark.parametrize("name", available_recipes())
def test_builtin_recipes_are_valid(name):
    recipe = load_recipe(name)
    assert recipe.name == name
    if not recipe.is_container:
        assert recipe.python_version == "3.9"
        assert recipe.requirements(), "a conda recipe installs something"


def test_default_recipe_pins_are_consistent():
    """TensorFlow 2.10.0 requires protobuf<3.20: the article's 3.20.0 must not come back."""
    reqs = {r.name: r for r, _ in load_recipe().requirements()}
    assert not reqs["protobuf"].specifier.contains("3.20.0")
    assert reqs["protobuf"].specifier.contains("3.19.6")
    assert str(reqs["dask-cuda"].specifier) == "==23.8.0", "unpinned dask-cuda resolves to NVIDIA's index only"


def _resolved(python: str, requirements: list, report: Path) -> dict:
    """What pip's resolver installs for these requirements into a fresh env of `python`: name -> version."""
    command = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report)]
    subprocess.run(command + requirements, check=True, capture_output=True, timeout=900)
    return {
        canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"]
        for i in json.loads(report.read_text())["install"]
    }


@pytest.mark.slow
def test_the_default_recipe_resolves_to_one_cudnn_8(tf_python, tmp_path):
    """pip's own resolver report (PyPI): TensorFlow's and TensorRT's groups together install exactly one
    cuDNN, the pinned 8.x, and conda adds none. Without the pin, tensorrt alone pulls cuDNN 9."""
    recipe = load_recipe()
    assert recipe.conda_dependency("cudnn") is None, "cuDNN has one source in the default recipe: the pip wheel"
    groups = {g.name: g.requirements for g in recipe.pip}
    got = _resolved(tf_python, groups["tensorflow"] + groups["cudnn"] + groups["tensorrt"], tmp_path / "together.json")
    assert {n: v for n, v in got.items() if n.startswith("nvidia-cudnn")} == {"nvidia-cudnn-cu11": "8.6.0.163"}
    assert got["tensorrt"] == "8.5.3.1" and got["tensorflow"] == "2.10.0"
    alone = _resolved(tf_python, groups["tensorrt"], tmp_path / "alone.json")
    assert Version(alone["nvidia-cudnn-cu11"]).major >= 9, "the pin is what keeps cuDNN 9 out"


CONDA_NAME = st.from_regex(r"[a-z][a-z0-9_.\-]{0,20}", fullmatch=True)
CONDA_VERSION = st.sampled_from(["", "=11.2.2", "==8.1.0", ">=3.9", " 8.1.0 h1234_0", "=*", "<9", "[build=cuda*]"])


@given(st.lists(st.tuples(st.sampled_from(["", "nvidia::", "conda-forge::"]), CONDA_NAME, CONDA_VERSION)))
def test_conda_dependency_finds_each_package_by_its_name_in_any_match_spec(specs):
    deps = [c + n + v for c, n, v in specs]
    recipe = dataclasses.replace(load_recipe(), conda_dependencies=deps)
    for (_, name, version), dep in zip(specs, deps):
        assert conda_spec(dep) == (name, version.strip())
        assert recipe.conda_dependency(name) == next(d for d, (_, n, _) in zip(deps, specs) if n == name)
    assert recipe.conda_dependency("NoSuchPackage") is None


def test_default_recipe_puts_tensorrt_links_on_the_loader_path():
    recipe = load_recipe()
    ld = next(v for v in recipe.activate if v.name == "LD_LIBRARY_PATH")
    link_dirs = {link.dir for link in recipe.links}
    assert link_dirs <= set(ld.prepend), "the TensorRT .so.7 links must be where the loader looks"


def test_environment_yml_is_the_default_recipe():
    with open(REPO / "environment.yml", encoding="utf-8") as fh:
        assert yaml.safe_load(fh) == conda_environment(load_recipe("tf210-cuda112"))


BAD = {
    "unknown key": (
        "name: x\npip:\n  - name: a\n    requirement: [tensorflow]\n",
        4,
        "pip[0].requirement: unknown key",
    ),
    "bad requirement": (
        "name: x\npip:\n  - name: a\n    requirements: ['tensorflow=>2']\n",
        4,
        "not a valid pip requirement",
    ),
    "missing name": ("description: hi\n", 1, "name: required key is missing"),
    "bad specifier": ("name: x\nexpect:\n  python: '3.9'\n", 3, "expect.python: not a version specifier"),
    "bad placeholder": (
        "name: x\nlinks:\n  - {dir: '{prefx}/lib', name: a, target: b}\n",
        3,
        "unknown placeholder {prefx}",
    ),
    "two actions": ("name: x\nactivate:\n  A: {set: x, prepend: [y]}\n", 3, "exactly one of prepend, append or set"),
    "bad yaml": ("name: [x\n", 2, "invalid YAML"),
    "bad gpu mode": ("name: x\nexpect:\n  gpu: maybe\n", 3, "expected one of required, optional, none"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_recipe_names_file_line_and_key(case):
    text, line, message = BAD[case]
    with pytest.raises(InputError) as err:
        parse_recipe(text, "bad.yml")
    assert err.value.file == "bad.yml"
    assert err.value.line == line
    assert message in str(err.value)


def test_malformed_recipe_on_the_cli_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        textwrap.dedent("""\
        name: broken
        conda:
          dependencies: [python=3.9]
          chanels: [conda-forge]
        """)
    )
    result = doctor("check", "--fast", "--recipe", str(bad))
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"merlin-doctor: error: {bad}:4: conda.chanels: unknown key (known: channels, dependencies)"
    )
    assert "Traceback" not in result.stderr


def test_unknown_recipe_lists_the_known_ones():
    result = doctor("check", "--recipe", "tf999")
    assert result.returncode == 2
    assert "no recipe 'tf999'" in result.stderr and "tf210-cuda112" in result.stderr
