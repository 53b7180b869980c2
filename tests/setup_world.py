"""An offline world for `setup_env`: a local conda channel, local wheels and a recipe using both.

Shared by tests/test_setup_env.py and benchmarks/setup_rerun.py. The recipe has the
default recipe's shape (conda part, two pip groups, TensorRT links, activation variables,
the libdevice copy) but points at `file://` and a `--find-links` folder, so nothing is
downloaded. The `tensorrt` wheel carries gcc-built `libnvinfer*.so.8` for the links.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from conda_channel import build_channel

REPO = Path(__file__).resolve().parents[1]
SETUP_ENV = str(REPO / "setup_env")
NVINFER_VERSION = 8503  # what TensorRT 8.5.3's getInferLibVersion() answers

RECIPE = """\
name: setup-test
description: The tf210-cuda112 recipe's shape, on a local channel and local wheels.
env_name: merlin-test
conda:
  channels: [{channel}]
  dependencies: [python=3.9, cudatoolkit=11.2.2, cudnn=8.1.0, cuda-nvcc=11.3.58, pip]
pip:
  - name: core
    requirements: [mdtest-core==1.0]
    find_links: [{wheels}]
    no_index: true
  - name: tensorrt
    requirements: [tensorrt==8.5.3.1]
    find_links: [{wheels}]
    no_index: true
{extra_groups}links:
  - {{dir: "{{site_packages}}/tensorrt", name: libnvinfer.so.7, target: libnvinfer.so.8}}
  - {{dir: "{{site_packages}}/tensorrt", name: libnvinfer_plugin.so.7, target: libnvinfer_plugin.so.8}}
activate:
  LD_LIBRARY_PATH: {{prepend: ["{{prefix}}/lib", "{{site_packages}}/tensorrt"]}}
  # Quoted as XLA's flag parser needs it when the prefix holds a space.
  XLA_FLAGS: {{set: '--xla_gpu_cuda_data_dir="{{prefix}}/lib"'}}
copies:
  - {{from: "{{prefix}}/lib/libdevice.10.bc", to: "{{prefix}}/lib/nvvm/libdevice/libdevice.10.bc"}}
expect:
  python: "==3.9.*"
  gpu: optional
"""


@dataclass
class World:
    root: Path
    recipe: Path
    env: Dict[str, str]  # the environment every run gets: no pip config, own caches and logs

    def prefix(self, name: str) -> Path:
        return self.root / "my envs" / name

    @property
    def channel(self) -> str:
        return (self.root / "local channel").resolve().as_uri()

    def write_recipe(self, name: str, extra_groups: str = "") -> Path:
        """The test recipe, with more pip groups (YAML text) before `links:`."""
        path = self.root / name
        path.write_text(
            RECIPE.format(
                channel=json.dumps(self.channel),
                extra_groups=extra_groups,
                wheels=json.dumps(str(self.root / "local wheels")),
            )
        )
        return path

    def setup_env(self, prefix: Path, *args: str, recipe: Optional[Path] = None) -> subprocess.CompletedProcess:
        """./setup_env as a user runs it, with the rattler engine (this Python has it)."""
        cmd = [
            sys.executable,
            SETUP_ENV,
            "--recipe",
            str(recipe or self.recipe),
            "--prefix",
            str(prefix),
            "--engine",
            "rattler",
            "--yes",
            *args,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=str(REPO), timeout=300)


def make_wheel(dest: Path, name: str, version: str, files: Dict[str, bytes]) -> Path:
    """A minimal pure-Python wheel (METADATA, WHEEL, RECORD), as pip expects it."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    entries = dict(files)
    entries[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    entries[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: merlin-doctor-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [
        f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b'=').decode()},{len(b)}"
        for p, b in entries.items()
    ] + [f"{info}/RECORD,,"]
    entries[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = dest / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for p, b in entries.items():
            zf.writestr(p, b)
    return path


def _shared_object(workdir: Path, soname: str, body: str) -> bytes:
    src, out = workdir / f"{soname}.c", workdir / soname
    src.write_text(body + "\n")
    subprocess.run(["gcc", "-shared", "-fPIC", f"-Wl,-soname,{soname}", "-o", str(out), str(src)], check=True)
    return out.read_bytes()


def make_world(root: Path) -> World:
    """Build the channel, the wheels and the recipe under `root` (created; may hold spaces)."""
    root.mkdir(parents=True)
    build_channel(root / "local channel")
    wheels = root / "local wheels"
    wheels.mkdir()
    make_wheel(wheels, "mdtest-core", "1.0", {"mdtest_core/__init__.py": b"VALUE = 1\n"})
    body = f"int getInferLibVersion(void) {{ return {NVINFER_VERSION}; }}"
    libs = {f"tensorrt/{so}": _shared_object(root, so, body) for so in ("libnvinfer.so.8", "libnvinfer_plugin.so.8")}
    make_wheel(wheels, "tensorrt", "8.5.3.1", {"tensorrt/__init__.py": b"", **libs})
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "CONDA", "MAMBA", "MERLIN_DOCTOR_TEST", "XLA_FLAGS", "LD_LIBRARY_PATH"))
    }
    env.update(
        XDG_CACHE_HOME=str(root / "cache"),
        XDG_STATE_HOME=str(root / "state"),
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
    )
    world = World(root, root / "recipe.yml", env)
    world.write_recipe("recipe.yml")
    return world
