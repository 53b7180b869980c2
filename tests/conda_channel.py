"""Build a tiny offline conda channel for the engine and setup tests.

conda-forge is out of reach here, so the tests make their own ``file://`` channel with
packages standing in for the recipe's conda dependencies: cudatoolkit 11.2.2 and cudnn
8.1.0 (small real shared objects with the SONAMEs TensorFlow 2.10 dlopens), cuda-nvcc
11.3.58 (``lib/libdevice.10.bc`` and a ``bin/ptxas`` that answers ``--version``), python
3.9 (a venv laid over this machine's own Python 3.9, so no interpreter is shipped) and
pip (noarch: python, unpacked from that Python's ensurepip wheel, so
``PREFIX/bin/python -m pip`` works). The packages are real ``.tar.bz2`` conda packages
(``info/index.json``, ``info/paths.json``, ``info/files``) indexed by
``rattler.index.index_fs``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Union

LibSource = Union[bytes, "os.PathLike[str]"]

# One fixed build time: the packages are the same on every run.
TIMESTAMP_MS = 1_680_000_000_000

# soname -> C body. cudart and cudnn answer their version calls like the real ones
# (11.2 -> 11020, 8.1.0 -> 8100) so probes that ask get a sensible answer.
DEFAULT_LIB_SOURCES: dict[str, str] = {
    "libcudart.so.11.0": "int cudaRuntimeGetVersion(int *v) { *v = 11020; return 0; }",
    "libcublas.so.11": "int cublasGetVersion_v2(void *h, int *v) { *v = 11401; return 0; }",
    "libcublasLt.so.11": "unsigned long cublasLtGetVersion(void) { return 11401; }",
    "libcufft.so.10": "int cufftGetVersion(int *v) { *v = 10401; return 0; }",
    "libcurand.so.10": "int curandGetVersion(int *v) { *v = 10203; return 0; }",
    "libcusolver.so.11": "int cusolverGetVersion(int *v) { *v = 11100; return 0; }",
    "libcusparse.so.11": "int cusparseGetVersion(void *h, int *v) { *v = 11400; return 0; }",
    "libcudnn.so.8": "unsigned long cudnnGetVersion(void) { return 8100; }",
}

# What real ptxas 11.3.58 prints for --version.
PTXAS_SCRIPT = """#!/bin/sh
if [ "$1" = "--version" ]; then
  echo "ptxas: NVIDIA (R) Ptx optimizing assembler"
  echo "Copyright (c) 2005-2021 NVIDIA Corporation"
  echo "Built on Sun_Mar_21_19:13:48_PDT_2021"
  echo "Cuda compilation tools, release 11.3, V11.3.58"
  echo "Build cuda_11.3.r11.3/compiler.29745058_0"
  exit 0
fi
echo "ptxas fatal   : stand-in ptxas only answers --version" >&2
exit 1
"""

# LLVM bitcode wrapper magic, so a file-type sniff sees bitcode.
LIBDEVICE_BYTES = b"BC\xc0\xde" + b"\x00" * 60


@dataclass
class _File:
    path: str
    data: bytes = b""
    mode: int = 0o644
    link_target: str | None = None  # set for a symlink


@dataclass
class _Package:
    name: str
    version: str
    subdir: str
    depends: list[str] = field(default_factory=list)
    files: list[_File] = field(default_factory=list)
    noarch_python_entry_points: list[str] | None = None

    @property
    def build(self) -> str:
        """A content hash, as real builds carry: changed files never hit a stale cache entry."""
        digest = hashlib.sha256()
        for f in self.files:
            digest.update(f"{f.path}\0{f.mode}\0{f.link_target}\0".encode() + f.data)
        return f"h{digest.hexdigest()[:7]}_0"

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.build}.tar.bz2"


def build_channel(dest: Path, libs: Mapping[str, LibSource] | None = None) -> str:
    """Write and index the channel under ``dest``; return its ``file://`` URL.

    ``libs`` maps a path relative to the prefix (``lib/libcudart.so.11.0``) to the file's
    bytes or to a file to copy; it adds to or replaces the gcc-built defaults. Files named
    ``libcudnn*`` go into the cudnn package, all others into cudatoolkit. Building again
    into the same ``dest`` replaces the packages there.
    """
    require_rattler()
    import rattler.index

    dest = Path(dest)
    with tempfile.TemporaryDirectory(prefix="merlin-channel-") as work:
        files = default_libs(Path(work))
        for rel, src in (libs or {}).items():
            files[rel] = src if isinstance(src, bytes) else Path(src).read_bytes()
    cudnn = {p: b for p, b in files.items() if Path(p).name.startswith("libcudnn")}
    toolkit = {p: b for p, b in files.items() if p not in cudnn}
    python_home, python_version = find_python39()
    packages = [
        _Package("cudatoolkit", "11.2.2", "linux-64", files=[_File(p, b, 0o755) for p, b in sorted(toolkit.items())]),
        _Package(
            "cudnn",
            "8.1.0",
            "linux-64",
            depends=["cudatoolkit 11.2.*"],
            files=[_File(p, b, 0o755) for p, b in sorted(cudnn.items())],
        ),
        _Package(
            "cuda-nvcc",
            "11.3.58",
            "linux-64",
            files=[
                _File("bin/ptxas", PTXAS_SCRIPT.encode(), 0o755),
                _File("lib/libdevice.10.bc", LIBDEVICE_BYTES),
            ],
        ),
        _python_package(python_home, python_version),
        _pip_package(python_home),
    ]
    for sub in ("linux-64", "noarch"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
        for stale in (dest / sub).glob("*.tar.bz2"):  # a rebuild must not leave rivals behind
            stale.unlink()
    for pkg in packages:
        _write_package(pkg, dest / pkg.subdir / pkg.filename)
    asyncio.run(rattler.index.index_fs(dest, write_zst=False, write_shards=False, force=True))
    return dest.resolve().as_uri()


def default_libs(workdir: Path) -> dict[str, bytes]:
    """Compile the stand-in CUDA libraries with gcc: ``{"lib/<soname>": bytes}``."""
    out: dict[str, bytes] = {}
    for soname, body in DEFAULT_LIB_SOURCES.items():
        src = workdir / f"{soname}.c"
        so = workdir / soname
        src.write_text(body + "\n")
        subprocess.run(
            ["gcc", "-shared", "-fPIC", f"-Wl,-soname,{soname}", "-o", str(so), str(src)],
            check=True,
        )
        out[f"lib/{soname}"] = so.read_bytes()
    return out


def find_python39() -> tuple[Path, str]:
    """Return (home prefix, full version) of this machine's real Python 3.9.

    Looks at ``$PYTHON39``, then ``pyenv prefix 3.9``, then python3.9 on PATH (as
    scripts/dev-env does). pyenv's shims are scripts, useless as a venv's ``bin/python``
    link, so the interpreter found is asked for its real ``sys.base_prefix``.
    """
    candidates = [os.environ["PYTHON39"]] if os.environ.get("PYTHON39") else []
    if shutil.which("pyenv"):
        found = subprocess.run(["pyenv", "prefix", "3.9"], capture_output=True, text=True)
        if found.returncode == 0:
            candidates.append(os.path.join(found.stdout.splitlines()[0], "bin", "python3.9"))
    candidates.append("python3.9")
    probe = "import sys, json; print(json.dumps([sys.base_prefix, sys.version.split()[0]]))"
    for exe in candidates:
        try:
            done = subprocess.run([exe, "-c", probe], capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if done.returncode == 0:
            home, version = json.loads(done.stdout)
            return Path(home), version
    raise RuntimeError(
        "the test channel needs a real Python 3.9 (looked at $PYTHON39, `pyenv prefix 3.9` "
        "and python3.9 on PATH); install one, e.g. `pyenv install 3.9`"
    )


def require_rattler() -> None:
    """Fail when py-rattler is missing: CI must run the real engine.

    The one exception is Python < 3.10, where py-rattler cannot be installed at all:
    scripts/test runs the suite under both Python 3.9 and python3, and these tests run
    in the python3 pass, so the 3.9 pass skips them with that reason.
    """
    if sys.version_info < (3, 10):
        import pytest
        from conftest import runs_in_both_passes

        if not runs_in_both_passes():  # else the skip would leave the test run nowhere
            pytest.fail(
                "this test needs py-rattler (Python >= 3.10): mark it per_interpreter so scripts/test "
                "runs it in its python3 pass"
            )
        pytest.skip("py-rattler needs Python >= 3.10; scripts/test runs this in its python3 pass")
    try:
        import rattler  # noqa: F401
    except ImportError as exc:
        raise AssertionError(
            "py-rattler is not importable in this Python; run the project's test setup "
            "(scripts/test), which installs `py-rattler>=0.28,<0.29` into .venv/py3"
        ) from exc


def _python_package(home: Path, version: str) -> _Package:
    """A ``python`` package that is a venv over ``home``: links plus ``pyvenv.cfg``."""
    short = ".".join(version.split(".")[:2])
    cfg = f"home = {home / 'bin'}\ninclude-system-site-packages = false\nversion = {version}\n"
    return _Package(
        "python",
        version,
        "linux-64",
        files=[
            _File("pyvenv.cfg", cfg.encode()),
            _File(f"bin/python{short}", link_target=str(home / "bin" / f"python{short}")),
            _File("bin/python3", link_target=f"python{short}"),
            _File("bin/python", link_target=f"python{short}"),
        ],
    )


def _pip_package(home: Path) -> _Package:
    """A noarch: python ``pip`` package unpacked from the base Python's ensurepip wheel."""
    bundled = sorted((home / "lib").glob("python3.*/ensurepip/_bundled/pip-*.whl"))
    if not bundled:
        raise RuntimeError(f"no ensurepip pip wheel under {home}/lib; the base Python lacks ensurepip")
    wheel = bundled[-1]
    version = wheel.name.split("-")[1]
    files = []
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if not info.is_dir():
                files.append(_File(f"site-packages/{info.filename}", zf.read(info)))
    return _Package(
        "pip",
        version,
        "noarch",
        depends=["python >=3.7"],
        files=files,
        noarch_python_entry_points=[
            "pip = pip._internal.cli.main:main",
            "pip3 = pip._internal.cli.main:main",
        ],
    )


def _write_package(pkg: _Package, out: Path) -> None:
    """Write ``pkg`` as a .tar.bz2 conda package with its info/ metadata."""
    index = {
        "name": pkg.name,
        "version": pkg.version,
        "build": pkg.build,
        "build_number": 0,
        "depends": pkg.depends,
        "license": "merlin-doctor test stand-in",
        "subdir": pkg.subdir,
        "timestamp": TIMESTAMP_MS,
    }
    if pkg.subdir == "noarch":  # pip, the one noarch package here, is a python one
        index["noarch"] = "python"
    else:
        index["arch"], index["platform"] = "x86_64", "linux"
    paths = []
    for f in pkg.files:
        if f.link_target is None:
            paths.append(
                {
                    "_path": f.path,
                    "path_type": "hardlink",
                    "sha256": hashlib.sha256(f.data).hexdigest(),
                    "size_in_bytes": len(f.data),
                }
            )
        else:
            paths.append({"_path": f.path, "path_type": "softlink"})
    info = [
        _File("info/index.json", _json(index)),
        _File("info/paths.json", _json({"paths": paths, "paths_version": 1})),
        _File("info/files", "".join(f.path + "\n" for f in pkg.files).encode()),
    ]
    if pkg.noarch_python_entry_points is not None:
        link = {
            "noarch": {"type": "python", "entry_points": pkg.noarch_python_entry_points},
            "package_metadata_version": 1,
        }
        info.append(_File("info/link.json", _json(link)))
    tmp = out.with_name(out.name + ".part")
    with tarfile.open(tmp, "w:bz2", compresslevel=1) as tar:
        for f in info + pkg.files:
            entry = tarfile.TarInfo(f.path)
            entry.mtime = TIMESTAMP_MS // 1000
            entry.mode = f.mode
            if f.link_target is None:
                entry.size = len(f.data)
                tar.addfile(entry, io.BytesIO(f.data))
            else:
                entry.type, entry.linkname, entry.mode = tarfile.SYMTYPE, f.link_target, 0o777
                tar.addfile(entry)
    os.replace(tmp, out)


def _json(obj: object) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=True).encode()
