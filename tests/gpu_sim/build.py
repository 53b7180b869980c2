"""Builds simulated GPU machines: stand-in NVIDIA libraries compiled from the C sources next to this
file, laid out in a directory tree the way real driver, conda, pip and /usr/local/cuda installs
lay them out, so the doctor's real probes (ctypes, pynvml) run unmodified against them.

From tests: ``build_scenario("healthy-t4", tmp_path / "t4").run([...])``. From a shell:
``python3 tests/gpu_sim/build.py healthy-t4 /tmp/t4`` prints the variables to export.
Compiling needs only gcc; reading scenarios.yml needs PyYAML (a dependency of the project).
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import copy
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

HERE = Path(__file__).resolve().parent
SCENARIOS_FILE = HERE / "scenarios.yml"
PYTHON = "3.9"
SITE = f"env/lib/python{PYTHON}/site-packages"
CFLAGS = ["-std=c99", "-O1", "-fPIC", "-shared", "-fvisibility=hidden", "-Wall", "-Wextra", "-Werror"]
# Variables of the host that would leak into a scenario and change what its libraries report.
HOST_VARIABLES = (
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV",
    "XLA_FLAGS",
)
SCENARIO_KEYS = {
    "description",
    "extends",
    "host",
    "driver",
    "devices",
    "env",
    "ld_library_path",
    "conda_packages",
    "pip_packages",
    "libs",
    "links",
    "libdevice",
    "ptxas",
    "tensorflow",
}

Version = tuple[int, int, int]


def _scaled(scale: int) -> Callable[[Version], int]:
    """The common encoding major * scale + minor * 100 + patch of the *_VERSION macros."""
    return lambda v: v[0] * scale + v[1] * 100 + v[2]


def _cublas_version(v: Version) -> int:
    """cublas_api.h: CUBLAS_VERSION scales major by 1000 up to cuBLAS 11.6 (CUDA 11.4; seen in a copy
    of its header) and by 10000 from 11.9 (CUDA 11.7; seen); 11.7/11.8 are assumed to be 10000 too."""
    return _scaled(10000 if v[:2] >= (11, 7) else 1000)(v)


def _major_switch(major: int) -> Callable[[Version], int]:
    """cuDNN 9 and TensorRT 10 moved from major * 1000 to major * 10000."""
    return lambda v: _scaled(10000 if v[0] >= major else 1000)(v)


# cupti_version.h: CUPTI_API_VERSION per CUDA toolkit (the header's own changelog comment).
CUPTI_API_VERSIONS = {
    (11, 0): 13,
    (11, 1): 14,
    (11, 2): 15,
    (11, 3): 15,
    (11, 4): 15,
    (11, 5): 16,
    (11, 6): 17,
    (11, 7): 17,
    (11, 8): 18,
    (12, 0): 19,
}


def _cupti_version(v: Version) -> int:
    return CUPTI_API_VERSIONS[v[:2]]


@dataclass(frozen=True)
class Family:
    """One kind of stand-in library: its C source and how its version call encodes a version."""

    source: str
    encode: Callable[[Version], int] | None = None  # None: a driver library, configured at run time

    @property
    def is_driver(self) -> bool:
        return self.encode is None


# Keyed by the soname up to ".so".
FAMILIES: dict[str, Family] = {
    "libnvidia-ml": Family("nvml.c"),
    "libcuda": Family("cuda.c"),
    "libcudart": Family("cudart.c", lambda v: v[0] * 1000 + v[1] * 10),
    "libcublas": Family("cublas.c", _cublas_version),
    "libcublasLt": Family("cublasLt.c", _cublas_version),
    "libcufft": Family("cufft.c", _scaled(1000)),
    "libcurand": Family("curand.c", _scaled(1000)),
    "libcusolver": Family("cusolver.c", _scaled(1000)),
    "libcusparse": Family("cusparse.c", _scaled(1000)),
    "libcudnn": Family("cudnn.c", _major_switch(9)),
    "libnvinfer": Family("nvinfer.c", _major_switch(10)),
    "libnvinfer_plugin": Family("nvinfer_plugin.c", _major_switch(10)),
    "libcupti": Family("cupti.c", _cupti_version),
}


def parse_version(text: str) -> Version:
    """'11.4.1.1043' -> (11, 4, 1); missing parts are 0."""
    parts = [int(p) for p in text.split(".")[:3]] + [0, 0]
    return parts[0], parts[1], parts[2]


def stem(soname: str) -> str:
    """'libcublasLt.so.11' -> 'libcublasLt'."""
    return soname.split(".so", 1)[0]


# ---------------------------------------------------------------------------------------------
# Compiling, with a cache shared by every scenario (and test session) keyed on sources and flags.


@dataclass(frozen=True)
class Variant:
    """One distinct library binary: same variant, same file, whichever scenario asks."""

    soname: str
    version: str = ""  # toolkit libraries only
    cuda: str = ""  # the CUDA runtime a toolkit library was built for
    crash_on_load: bool = False
    no_version_call: bool = False  # cudnn: no version symbols; cudart: cudaRuntimeGetVersion fails

    @property
    def family(self) -> Family:
        try:
            return FAMILIES[stem(self.soname)]
        except KeyError:
            raise ValueError(f"no stand-in for {self.soname} (known: {', '.join(sorted(FAMILIES))})") from None

    def needs(self) -> Variant | None:
        """The library this one links against: the plugin library needs libnvinfer of its major."""
        if stem(self.soname) != "libnvinfer_plugin":
            return None
        return Variant(self.soname.replace("libnvinfer_plugin", "libnvinfer"), self.version, self.cuda)

    def defines(self) -> list[str]:
        flags = ["-DSIM_CRASH_ON_LOAD"] if self.crash_on_load else []
        flags += ["-DSIM_NO_VERSION_CALL"] if self.no_version_call else []
        encode = self.family.encode
        if encode is not None:
            v = parse_version(self.version)
            cuda = parse_version(self.cuda)
            flags += [
                f"-DSIM_VERSION={encode(v)}",
                f"-DSIM_VERSION_MAJOR={v[0]}",
                f"-DSIM_VERSION_MINOR={v[1]}",
                f"-DSIM_VERSION_PATCH={v[2]}",
                f"-DSIM_CUDART_VERSION={cuda[0] * 1000 + cuda[1] * 10}",
            ]
        return flags

    def sources(self) -> list[Path]:
        names = [self.family.source] + (["sim_config.c"] if self.family.is_driver else [])
        return [HERE / n for n in names]


def default_cache_dir() -> Path:
    """$GPU_SIM_CACHE, else a per-user directory under the system temp dir."""
    env = os.environ.get("GPU_SIM_CACHE")
    return Path(env) if env else Path(tempfile.gettempdir()) / f"merlin-doctor-gpu-sim-{os.getuid()}"


class Compiler:
    """Compiles variants with gcc into a content-addressed cache; safe to share between processes
    (each result is written under a temporary name and renamed into place)."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        gcc = shutil.which("gcc")
        if gcc is None:
            raise RuntimeError("gcc is needed to build the simulated GPU libraries (tests/gpu_sim)")
        self.gcc = gcc
        self.cache_dir = cache_dir or default_cache_dir()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._gcc_version = subprocess.run(
            [gcc, "--version"], capture_output=True, text=True, check=True
        ).stdout.splitlines()[0]
        self._headers = b"".join(p.read_bytes() for p in sorted(HERE.glob("*.h")))

    def _key(self, variant: Variant, command: Sequence[str]) -> str:
        h = hashlib.sha256(self._gcc_version.encode() + self._headers)
        for source in variant.sources():
            h.update(source.read_bytes())
        h.update("\0".join(command).encode())
        return h.hexdigest()[:20]

    def compile(self, variant: Variant) -> Path:
        needed = variant.needs()
        link = ["-Wl,--no-as-needed", str(self.compile(needed))] if needed else []
        command = CFLAGS + [f"-Wl,-soname,{variant.soname}"] + variant.defines()
        out = self.cache_dir / f"{stem(variant.soname)}-{self._key(variant, command + link)}.so"
        if out.exists():
            return out
        tmp = out.with_name(f"{out.name}.{uuid.uuid4().hex}.tmp")
        result = subprocess.run(
            [self.gcc, *command, *map(str, variant.sources()), *link, "-o", str(tmp), "-ldl"],
            capture_output=True,
            text=True,
            cwd=HERE,
        )
        if result.returncode != 0:
            raise RuntimeError(f"gcc failed for {variant}:\n{result.stderr}")
        os.replace(tmp, out)
        return out

    def compile_all(self, variants: Sequence[Variant]) -> dict[Variant, Path]:
        unique = list(dict.fromkeys(variants))
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            return dict(zip(unique, pool.map(self.compile, unique)))


# ---------------------------------------------------------------------------------------------
# Scenario data.


def _merge(base: Any, override: Any) -> Any:
    """Deep merge for `extends`: mappings merge key by key, None deletes a key, anything else replaces."""
    if not isinstance(override, dict):
        return copy.deepcopy(override)
    merged = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge(merged.get(key), value)
    return merged


def _require_str(value: Any, where: str) -> str:
    """YAML reads 8.9 as a float and 12 as an int; versions must be quoted to keep their text."""
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a quoted string, got {value!r}")
    return value


def load_scenarios(path: Path = SCENARIOS_FILE) -> dict[str, dict[str, Any]]:
    """Every buildable scenario with `extends` resolved and its devices expanded from `gpus`."""
    import yaml  # only the scenario data needs PyYAML

    data = yaml.safe_load(path.read_text())
    raw: dict[str, dict[str, Any]] = data["scenarios"]
    gpus: dict[str, dict[str, Any]] = data["gpus"]

    def resolve(name: str, chain: tuple[str, ...] = ()) -> dict[str, Any]:
        if name in chain:
            raise ValueError(f"scenario {name}: extends itself ({' -> '.join(chain + (name,))})")
        if name not in raw:
            raise ValueError(f"scenario {chain[-1] if chain else name}: unknown scenario {name!r}")
        spec = copy.deepcopy(raw[name])
        unknown = set(spec) - SCENARIO_KEYS
        if unknown:
            raise ValueError(f"scenario {name}: unknown keys {sorted(unknown)}")
        parent = spec.pop("extends", None)
        return _merge(resolve(parent, chain + (name,)), spec) if parent else spec

    scenarios = {}
    for name in raw:
        if not name.startswith("_"):
            spec = resolve(name)
            spec["devices"] = [_device(gpus, entry, i, name) for i, entry in enumerate(spec.get("devices") or [])]
            scenarios[name] = spec
    return scenarios


def _device(gpus: Mapping[str, dict[str, Any]], entry: Any, index: int, scenario: str) -> dict[str, Any]:
    """A device entry is a catalogue name or {gpu: name, ...overrides}; fills uuid and PCI address."""
    overrides = {"gpu": entry} if isinstance(entry, str) else dict(entry)
    gpu = overrides.pop("gpu")
    if gpu not in gpus:
        raise ValueError(f"scenario {scenario}: unknown gpu {gpu!r} (known: {', '.join(gpus)})")
    device = {**gpus[gpu], **overrides}
    _require_str(device["cc"], f"scenario {scenario}: gpu {gpu} cc")
    device.setdefault("uuid", f"GPU-{uuid.uuid5(uuid.NAMESPACE_URL, f'gpu-sim/{scenario}/{index}')}")
    device.setdefault("pci_bus_id", f"00000000:{0x3B + index:02X}:00.0")
    return device


# ---------------------------------------------------------------------------------------------
# Building a scenario's tree.


@dataclass
class PlacedLibrary:
    """One stand-in library as placed in the tree: where the loader finds it and what it is."""

    key: str  # the scenario's name for it (libs: key)
    soname: str
    version: str
    path: Path  # <dir>/<soname>, the name the loader looks up
    file: Path  # the regular file it resolves to
    owner: str | None  # "conda:<package>", "pip:<distribution>" or None


@dataclass
class Scenario:
    """A built simulated machine. Host paths (/proc, /dev, /usr/...) live under `root`."""

    name: str
    root: Path
    spec: dict[str, Any]  # the resolved scenario data
    env: dict[str, str]  # variables to set for a process run against it
    libraries: list[PlacedLibrary] = field(default_factory=list)
    ld_library_path: list[Path] = field(default_factory=list)  # the scenario's own entries, in order
    system_lib_dirs: list[Path] = field(default_factory=list)  # driver dirs, appended to LD_LIBRARY_PATH
    # in place of ld.so.cache

    @property
    def prefix(self) -> Path:
        """The conda env."""
        return self.root / "env"

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default os.environ) without the host's GPU-related variables, plus `env`."""
        merged = {
            k: v
            for k, v in (os.environ if base is None else base).items()
            if k not in HOST_VARIABLES and not k.startswith("GPU_SIM_")
        }
        merged.update(self.env)
        return merged

    def run(self, args: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess:
        """Runs args against the scenario; the loader reads LD_LIBRARY_PATH only at process start."""
        return subprocess.run(list(args), env=self.environ(), capture_output=True, text=True, timeout=timeout)


def _write(path: Path, content: str | bytes, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    if mode is not None:
        path.chmod(mode)


def _symlink(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


class _Builder:
    """Lays one scenario out under root; collects owned files for conda-meta and RECORD."""

    def __init__(self, name: str, spec: dict[str, Any], root: Path, compiler: Compiler) -> None:
        self.name, self.spec, self.root, self.compiler = name, spec, root, compiler
        self.owned: dict[str, list[Path]] = {}

    def rel(self, template: str) -> Path:
        return self.root / template.format(site=SITE)

    def own(self, owner: str | None, *paths: Path) -> None:
        if owner:
            kind, _, package = owner.partition(":")
            table = {"conda": "conda_packages", "pip": "pip_packages"}.get(kind)
            if table is None or package not in (self.spec.get(table) or {}):
                raise ValueError(f"scenario {self.name}: owner {owner!r} is not in conda_packages/pip_packages")
            self.owned.setdefault(owner, []).extend(paths)

    def build(self) -> Scenario:
        driver = self.spec.get("driver")
        libs = self.spec.get("libs") or {}
        variants = [self._lib_variant(key, lib) for key, lib in libs.items()]
        if driver:
            variants += [Variant("libnvidia-ml.so.1"), Variant("libcuda.so.1")]
        binaries = self.compiler.compile_all(variants)

        scenario = Scenario(self.name, self.root, self.spec, {})
        for (key, lib), variant in zip(libs.items(), variants):
            scenario.libraries.append(self._place_lib(key, lib, binaries[variant]))
        if driver:
            scenario.system_lib_dirs.append(self._place_driver(driver, binaries))
        self._place_host(driver)
        for link, target in (self.spec.get("links") or {}).items():
            _symlink(self.rel(link), target)
        self._place_tools()
        self._write_conda_meta()
        self._write_pip_records()

        scenario.ld_library_path = [self.rel(d) for d in self.spec.get("ld_library_path") or []]
        search = scenario.ld_library_path + scenario.system_lib_dirs
        scenario.env = {
            "LD_LIBRARY_PATH": os.pathsep.join(map(str, search)),
            "MERLIN_DOCTOR_SYSROOT": str(self.root),  # where the doctor's probes read /proc, /dev, /usr
            "CONDA_PREFIX": str(scenario.prefix),
            "PATH": os.pathsep.join([str(scenario.prefix / "bin"), os.environ.get("PATH", os.defpath)]),
            **{k: _require_str(v, f"scenario {self.name}: env {k}") for k, v in (self.spec.get("env") or {}).items()},
        }
        if driver:
            scenario.env["GPU_SIM_CONFIG"] = str(self.root / "gpu_sim.conf")
        return scenario

    def _lib_variant(self, key: str, lib: Mapping[str, Any]) -> Variant:
        where = f"scenario {self.name}: libs {key}"
        return Variant(
            _require_str(lib["soname"], where),
            _require_str(lib["version"], where),
            _require_str(lib.get("cuda", "11.2"), where),
            bool(lib.get("crash_on_load", False)),
            bool(lib.get("no_version_call", False)),
        )

    def _place_lib(self, key: str, lib: Mapping[str, Any], binary: Path) -> PlacedLibrary:
        """Real layout: a versioned file plus the soname symlink (conda, debs), or one plain file
        named by the soname (pip wheels) when `file` is the soname."""
        soname = lib["soname"]
        directory = self.rel(lib["dir"])
        file = directory / lib.get("file", f"{stem(soname)}.so.{lib['version']}")
        path = directory / soname
        _write(file, binary.read_bytes(), 0o755)
        if file != path:
            _symlink(path, file.name)
        self.own(lib.get("owner"), *{file, path})
        return PlacedLibrary(key, soname, lib["version"], path, file, lib.get("owner"))

    def _place_driver(self, driver: Mapping[str, Any], binaries: Mapping[Variant, Path]) -> Path:
        """Linux: libX.so.<version> with libX.so.1 (and libcuda.so) symlinks; WSL: plain copies, as
        /usr/lib/wsl/lib is a mount without symlinks. Also writes the machine's gpu_sim.conf."""
        version = _require_str(driver["version"], f"scenario {self.name}: driver version")
        directory = self.rel(driver["dir"])
        nvml, cuda = binaries[Variant("libnvidia-ml.so.1")], binaries[Variant("libcuda.so.1")]
        if self._os() == "wsl2":
            for name, binary in (
                ("libnvidia-ml.so.1", nvml),
                ("libcuda.so", cuda),
                ("libcuda.so.1", cuda),
                ("libcuda.so.1.1", cuda),
            ):
                _write(directory / name, binary.read_bytes(), 0o555)
        else:
            for base, binary in (("libnvidia-ml.so", nvml), ("libcuda.so", cuda)):
                _write(directory / f"{base}.{version}", binary.read_bytes(), 0o755)
                _symlink(directory / f"{base}.1", f"{base}.{version}")
            _symlink(directory / "libcuda.so", "libcuda.so.1")
        _write(self.root / "gpu_sim.conf", self._machine_config(driver))
        return directory

    def _machine_config(self, driver: Mapping[str, Any]) -> str:
        cuda = parse_version(_require_str(driver["cuda"], f"scenario {self.name}: driver cuda"))
        lines = [
            f"# gpu_sim machine for scenario {self.name} (format: tests/gpu_sim/README.md)",
            f"driver_version={driver['version']}",
            f"cuda_driver_version={cuda[0] * 1000 + cuda[1] * 10}",
            f"nvml_init={driver.get('nvml_init', 'ok')}",
            f"cu_init={driver.get('cu_init', 'ok')}",
        ]
        for i, d in enumerate(self.spec["devices"]):
            fields = {
                "name": d["name"],
                "uuid": d["uuid"],
                "serial": d.get("serial") or "",
                "cc": d["cc"],
                "pci_bus_id": d["pci_bus_id"],
                "pci_device_id": hex(d["pci_device_id"]),
                "pci_subsystem_id": hex(d.get("pci_subsystem_id", 0)),
                "memory_total_mib": d["memory_mib"],
                "memory_used_mib": d.get("used_mib", 0),
                "persistence": d["persistence"],
                "mig": d["mig"],
                "throttle_reasons": d.get("throttle_reasons", 0),
                "ecc_errors": d["ecc_errors"],
                "retired_pages": d["retired_pages"],
                "processes": ",".join(f"{p['pid']}:{p['used_mib']}" for p in d.get("processes", [])),
            }
            lines += [f"device.{i}.{k}={v}" for k, v in fields.items()]
        return "\n".join(lines) + "\n"

    def _os(self) -> str:
        return (self.spec.get("host") or {}).get("os", "linux")

    def _place_host(self, driver: Mapping[str, Any] | None) -> None:
        """/proc/version, /proc/modules, /proc/driver/nvidia/version and /dev nodes (as empty files)."""
        host = self.spec.get("host") or {}
        wsl = self._os() == "wsl2"
        _write(
            self.root / "proc/version",
            "Linux version 5.15.133.1-microsoft-standard-WSL2 (root@1c602f52c2e4) (gcc (GCC) 11.2.0) "
            "#1 SMP Thu Oct 5 21:02:42 UTC 2023\n"
            if wsl
            else "Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) "
            "12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)\n",
        )
        module = driver.get("kernel_module", driver["version"]) if driver and not wsl else False
        modules = []
        if module:
            modules += [
                "nvidia_uvm 1478656 0 - Live 0x0000000000000000 (POE)",
                "nvidia_drm 77824 0 - Live 0x0000000000000000 (POE)",
                "nvidia_modeset 1298432 1 nvidia_drm, Live 0x0000000000000000 (POE)",
                "nvidia 56717312 2 nvidia_uvm,nvidia_modeset, Live 0x0000000000000000 (POE)",
            ]
            _write(
                self.root / "proc/driver/nvidia/version",
                f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {module}  Sat Jan 28 02:10:06 UTC 2023\n"
                "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n",
            )
            for node in ["nvidiactl", "nvidia-uvm"] + [f"nvidia{i}" for i in range(len(self.spec["devices"]))]:
                _write(self.root / "dev" / node, "")
        if host.get("nouveau"):
            modules.append("nouveau 2433024 0 - Live 0x0000000000000000")
        if wsl:
            _write(self.root / "dev/dxg", "")
        _write(self.root / "proc/modules", "".join(m + "\n" for m in modules))

    def _place_tools(self) -> None:
        """ptxas (a script answering --version like the real one) and libdevice bitcode."""
        ptxas = self.spec.get("ptxas")
        if ptxas:
            version = _require_str(ptxas["version"], f"scenario {self.name}: ptxas version")
            major, minor, _ = parse_version(version)
            path = self.rel(ptxas["path"])
            accepts = " ".join(ptxas.get("accepts") or [])
            _write(path, PTXAS_SCRIPT.format(major=major, minor=minor, version=version, accepts=accepts), 0o755)
            self.own(ptxas.get("owner"), path)
        for entry in (self.spec.get("libdevice") or {}).values():
            path = self.rel(entry["path"])
            _write(path, b"BC\xc0\xde" + b"\0" * 60)  # the LLVM bitcode magic
            self.own(entry.get("owner"), path)
        tf = self.spec.get("tensorflow")
        if tf:
            path = self.rel("{site}/tensorflow/python/platform/build_info.py")
            body = "".join(f"build_info[{k!r}] = {v!r}\n" for k, v in tf["build_info"].items())
            _write(
                path,
                f'"""Auto-generated module providing information about the build."""\nimport collections\n\n'
                f"build_info = collections.OrderedDict()\n{body}",
            )
            self.own("pip:tensorflow", path)

    def _write_conda_meta(self) -> None:
        meta = self.root / "env/conda-meta"
        _write(meta / "history", "==> 2024-01-01 00:00:00 <==\n# cmd: gpu_sim build\n")
        for name, pkg in (self.spec.get("conda_packages") or {}).items():
            version = _require_str(pkg["version"], f"scenario {self.name}: conda package {name}")
            files = sorted(str(p.relative_to(self.root / "env")) for p in self.owned.get(f"conda:{name}", []))
            record = {
                "name": name,
                "version": version,
                "build": pkg["build"],
                "build_number": 0,
                "channel": f"https://conda.anaconda.org/{pkg.get('channel', 'conda-forge')}/linux-64",
                "subdir": "linux-64",
                "fn": f"{name}-{version}-{pkg['build']}.conda",
                "files": files,
                "paths_data": {"paths_version": 1, "paths": [{"_path": f, "path_type": "hardlink"} for f in files]},
            }
            _write(meta / f"{name}-{version}-{pkg['build']}.json", json.dumps(record, indent=2) + "\n")

    def _write_pip_records(self) -> None:
        """A dist-info per pip package whose RECORD lists its files with sha256 and size, as pip writes."""
        site = self.rel("{site}")
        for name, pkg in (self.spec.get("pip_packages") or {}).items():
            version = _require_str(pkg["version"], f"scenario {self.name}: pip package {name}")
            dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
            _write(dist_info / "METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
            _write(dist_info / "INSTALLER", "pip\n")
            rows = []
            for path in sorted(self.owned.get(f"pip:{name}", []) + [dist_info / "METADATA", dist_info / "INSTALLER"]):
                data = path.read_bytes()
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                rows.append(f"{path.relative_to(site)},sha256={digest},{len(data)}")
            rows.append(f"{dist_info.relative_to(site)}/RECORD,,")
            _write(dist_info / "RECORD", "\n".join(rows) + "\n")


PTXAS_SCRIPT = """#!/bin/sh
# gpu_sim stand-in for ptxas {version}: answers --version as the real one does, and rejects a
# --gpu-name / -arch it does not accept (an empty list accepts any) with the real message.
accepts="{accepts}"
arch=""
version=""
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version=1 ;;
    --gpu-name|-arch) arch="$2"; shift ;;
    --gpu-name=*|-arch=*) arch="${{1#*=}}" ;;
  esac
  shift
done
if [ -n "$arch" ] && [ -n "$accepts" ] && ! printf ' %s ' "$accepts" | grep -q " $arch "; then
  echo "ptxas fatal   : Value '$arch' is not defined for option 'gpu-name'" >&2
  exit 255
fi
if [ -n "$version" ]; then
  cat <<'EOF'
ptxas: NVIDIA (R) Ptx optimizing assembler
Copyright (c) 2005-2021 NVIDIA Corporation
Built on Sun_Feb_14_21:12:21_PST_2021
Cuda compilation tools, release {major}.{minor}, V{version}
Build cuda_{major}.{minor}.r{major}.{minor}/compiler.29618528_0
EOF
  exit 0
fi
echo "ptxas fatal   : gpu_sim stand-in answers --version (and rejects unknown --gpu-name) only" >&2
exit 1
"""


def build_scenario(
    name: str, dest: Path, compiler: Compiler | None = None, scenarios: Mapping[str, dict[str, Any] | None] = None
) -> Scenario:
    """Builds scenario `name` into the empty or missing directory `dest`. Pass one `compiler` and the
    `load_scenarios()` result when building many, to share the work."""
    scenarios = scenarios if scenarios is not None else load_scenarios()
    if name not in scenarios:
        raise ValueError(f"unknown scenario {name!r} (known: {', '.join(scenarios)})")
    dest = Path(dest).resolve()
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"{dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    return _Builder(name, copy.deepcopy(scenarios[name]), dest, compiler or Compiler()).build()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a simulated GPU machine and print its environment.")
    parser.add_argument("scenario", nargs="?", help="scenario name; omit to list them")
    parser.add_argument("dest", nargs="?", type=Path, help="empty or missing directory to build into")
    args = parser.parse_args(argv)
    if not args.scenario or not args.dest:
        for name, spec in load_scenarios().items():
            print(f"{name}: {spec.get('description', '')}")
        return 0
    try:
        scenario = build_scenario(args.scenario, args.dest)
    except ValueError as error:
        parser.error(str(error))
    for key, value in scenario.env.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
