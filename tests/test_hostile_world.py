"""Issue 12, case by case: nothing outside the env, nothing executed, nothing replaced.

Each class of the attack report has its reproduction here: recipes that write, link or copy
outside the env (checked at load and, through planted symlinks, at write), a recipe name that
would run code in the activation scripts (sourced in bash and dash), `-o` given a device or a
FIFO, the lock taken through a symlink, a read-only env and a full disk (a real 1 MiB tmpfs),
malformed snapshots and flags, big inputs, libraries that misbehave when probed, a CR in an
activation value, and secrets in paths, channels, logs and plans. The generated inputs are in
tests/test_hostile_inputs.py.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, REPO, doctor
from gpu_sim.build import Compiler, build_scenario, default_cache_dir

from merlin_doctor.activation import activate_script, deactivate_script
from merlin_doctor.cli import cli
from merlin_doctor.errors import InputError
from merlin_doctor.facts import Facts
from merlin_doctor.recipe import EnvVar, Recipe, parse_recipe
from merlin_doctor.redact import Identity, mask_credentials, redact

SNAPSHOT = str(FIXTURES / "facts" / "cpu-venv-py39.json")


def write_recipe(path: Path, body: str) -> Path:
    path.write_text("name: hostile\nconda:\n  dependencies: [python=3.9]\n" + body)
    return path


LINKS = """links:
  - {dir: "{site_packages}/tensorrt", name: libnvinfer.so.7, target: libnvinfer.so.8}
"""
ACTIVATE = """activate:
  XLA_FLAGS: {set: "--xla_gpu_cuda_data_dir={prefix}/lib"}
"""
COPIES = """copies:
  - {from: "{prefix}/lib/libdevice.10.bc", to: "{prefix}/lib/nvvm/libdevice/libdevice.10.bc"}
"""


def make_env(root: Path) -> Path:
    """A conda env as the links, activation and copies steps see it (no Python needed)."""
    prefix = root / "env"
    (prefix / "conda-meta").mkdir(parents=True)
    trt = prefix / "lib" / "python3.9" / "site-packages" / "tensorrt"
    trt.mkdir(parents=True)
    (trt / "libnvinfer.so.8").write_bytes(b"trt")
    (prefix / "lib" / "libdevice.10.bc").write_bytes(b"BC\xc0\xde")
    return prefix


def run_cli(*args: str):
    """The CLI in-process (click's runner): exit code, stdout and stderr apart; any exception but
    SystemExit (a traceback for the user) fails the test."""
    runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()
    result = runner.invoke(cli, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def setup_only(tmp: Path, prefix: Path, recipe: Path, *steps: str, extra: tuple = ()):
    args = ["setup", "--recipe", str(recipe), "--prefix", str(prefix), "--yes", "--log", str(tmp / "setup.log")]
    for step in steps:
        args += ["--only", step]
    return run_cli(*args, *extra)


def one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("merlin-doctor: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


# --- 1. containment -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, key",
    [
        ("links:\n  - {dir: /etc, name: x, target: y}\n", "links[0].dir"),
        ('links:\n  - {dir: "{prefix}/lib", name: ../../x, target: y}\n', "links[0].name"),
        ('links:\n  - {dir: "{prefix}/lib", name: x, target: /etc/shadow}\n', "links[0].target"),
        ('links:\n  - {dir: "{prefix}/../lib", name: x, target: y}\n', "links[0].dir"),
        ('copies:\n  - {from: "{prefix}/a", to: /tmp/x}\n', "copies[0].to"),
        ('copies:\n  - {from: "{prefix}/a", to: "{prefix}/../x"}\n', "copies[0].to"),
        ('copies:\n  - {from: /etc/shadow, to: "{prefix}/x"}\n', "copies[0].from"),
        ('copies:\n  - {from: "{prefix}/a", to: "{prefix}x/y"}\n', "copies[0].to"),
    ],
)
def test_paths_outside_the_env_are_refused_when_the_recipe_loads(tmp_path: Path, body: str, key: str) -> None:
    recipe = write_recipe(tmp_path / "r.yml", body)
    with pytest.raises(InputError) as err:
        parse_recipe(recipe.read_text(), str(recipe))
    assert f"{key}: must" in str(err.value) and err.value.line is not None
    result = run_cli("setup", "--recipe", str(recipe), "--prefix", str(tmp_path / "env"), "--dry-run")
    assert result.exit_code == 2
    assert key in one_line_error(result.stderr)


@pytest.mark.parametrize(
    "planted, steps, body",
    [
        ("etc/conda/activate.d", ["activation"], ACTIVATE),
        ("etc/conda", ["activation"], ACTIVATE),
        ("lib/nvvm", ["copies"], COPIES),
        ("lib/python3.9/site-packages/tensorrt", ["links"], LINKS),
    ],
)
@pytest.mark.parametrize("force", [False, True])
def test_a_symlinked_directory_never_carries_a_write_out_of_the_env(
    tmp_path: Path, planted: str, steps: List[str], body: str, force: bool
) -> None:
    prefix = make_env(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "libnvinfer.so.8").write_bytes(b"trt")  # so the link has a target through the symlink
    inside = prefix / planted
    if inside.exists():
        shutil.rmtree(inside)
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.symlink_to(outside, target_is_directory=True)
    before = sorted(p.name for p in outside.rglob("*"))
    recipe = write_recipe(tmp_path / "r.yml", body)
    result = setup_only(tmp_path, prefix, recipe, *steps, extra=("--force",) if force else ())
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "outside the env" in result.stdout and "Traceback" not in result.stderr
    assert sorted(p.name for p in outside.rglob("*")) == before, "nothing was written through the symlink"


def test_a_copy_source_that_leads_out_of_the_env_is_not_read(tmp_path: Path) -> None:
    prefix = make_env(tmp_path)
    secret = tmp_path / "shadow"
    secret.write_text("root:secret\n")
    (prefix / "lib" / "libdevice.10.bc").unlink()
    (prefix / "lib" / "libdevice.10.bc").symlink_to(secret)
    result = setup_only(tmp_path, prefix, write_recipe(tmp_path / "r.yml", COPIES), "copies", extra=("--force",))
    assert result.exit_code == 1 and "outside the env" in result.stdout
    assert not (prefix / "lib" / "nvvm").exists()


def test_a_symlink_that_stays_inside_the_env_is_followed(tmp_path: Path) -> None:
    prefix = make_env(tmp_path)
    (prefix / "etc" / "conda-real").mkdir(parents=True)
    (prefix / "etc" / "conda").symlink_to("conda-real")
    recipe = write_recipe(tmp_path / "r.yml", ACTIVATE)
    result = setup_only(tmp_path, prefix, recipe, "activation")
    assert result.exit_code == 0, result.stdout
    assert (prefix / "etc" / "conda-real" / "activate.d" / "merlin-doctor.sh").is_file()


# --- 2. injection, and 8. a CR in a value ---------------------------------------------------

HOSTILE_VALUES = [
    "$(touch pwned-sub)",
    "`touch pwned-tick`",
    "a'b\"c",
    "line1\nline2",
    "cr\rhere",
    "x;touch pwned-semi",
    "${HOME}",
    "\\n",
    "tab\there",
    "ünï",
]


def test_a_recipe_name_or_variable_name_with_control_characters_is_refused() -> None:
    for text, key in (
        ('name: "x\\ntouch pwned #"\n', "name"),
        ('name: "x\\rtouch"\n', "name"),
        ('name: x\nactivate:\n  "A\\nB": {set: v}\n', "activate.A"),
        ('name: x\nenv_name: "a\\0b"\n', "env_name"),
    ):
        with pytest.raises(InputError) as err:
            parse_recipe(text, "r.yml")
        assert err.value.message.startswith(key) and "\n" not in str(err.value)


@pytest.mark.parametrize("shell", ["bash", "dash"])
def test_generated_scripts_quote_everything_in_bash_and_dash(tmp_path: Path, shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.fail(f"{shell} is not installed: the injection test sources the scripts in bash and dash")
    # Built directly (the loader refuses such a name): the generator is safe on its own too.
    recipe = Recipe(
        name="x\ntouch pwned-name #\r\x00",
        path="-",
        activate=[EnvVar(f"V{i}", set=v) for i, v in enumerate(HOSTILE_VALUES)]
        + [EnvVar("P", prepend=["$(touch pwned-p)", "{prefix}/lib"], append=["`touch pwned-a`"])],
    )
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "activate.sh").write_text(activate_script(recipe))
    (scripts / "deactivate.sh").write_text(deactivate_script(recipe))
    prefix = tmp_path / "my env $(touch pwned-prefix)"
    dump = tmp_path / "dump.py"
    dump.write_text("import json, os, sys\njson.dump(dict(os.environ), open(sys.argv[1], 'w'))\n")
    script = (
        f"export CONDA_PREFIX={shlex.quote(str(prefix))} P=old; "
        f"{shlex.quote(sys.executable)} {dump} before.json; . ./activate.sh; "
        f"{shlex.quote(sys.executable)} {dump} during.json; . ./deactivate.sh; "
        f"{shlex.quote(sys.executable)} {dump} after.json"
    )
    subprocess.run([shell, "-c", script], cwd=scripts, check=True, env={"PATH": os.environ["PATH"]})
    assert not [p.name for p in scripts.iterdir() if p.name.startswith("pwned")]
    before, during, after = (json.loads((scripts / f"{n}.json").read_text()) for n in ("before", "during", "after"))
    for i, value in enumerate(HOSTILE_VALUES):
        assert during[f"V{i}"] == value
    assert during["P"] == f"$(touch pwned-p):{prefix}/lib:old:`touch pwned-a`"
    shell_own = ("_", "SHLVL")  # bash execs the last command of -c in place of itself
    kept = lambda env: {k: v for k, v in env.items() if k not in shell_own}  # noqa: E731
    assert kept(after) == kept(before)


def test_a_value_with_a_carriage_return_converges(tmp_path: Path) -> None:
    prefix = make_env(tmp_path)
    recipe = write_recipe(tmp_path / "r.yml", 'activate:\n  XLA_FLAGS: {set: "a\\rb\\r\\n"}\n')
    assert setup_only(tmp_path, prefix, recipe, "activation").exit_code == 0
    again = run_cli(
        "setup", "--recipe", str(recipe), "--prefix", str(prefix), "--only", "activation", "--json", "--yes"
    )
    assert json.loads(again.stdout)["plan"][0]["done"] is True, again.stdout
    assert b"'a\rb\r\n'" in (prefix / "etc/conda/activate.d/merlin-doctor.sh").read_bytes()


# --- 3. output files ---------------------------------------------------------------------------


def test_report_to_a_fifo_and_to_dev_stdout_writes_into_them(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: List[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    result = run_cli("report", "--from", SNAPSHOT, "-o", str(fifo), "-q")
    reader.join(timeout=30)
    assert result.exit_code == 0 and stat.S_ISFIFO(fifo.stat().st_mode)
    assert json.loads(got[0])["kind"] == "merlin-doctor-report"
    piped = doctor("report", "--from", SNAPSHOT, "-o", "/dev/stdout", "-q")
    assert json.loads(piped.stdout.split("\nreport written")[0])["kind"] == "merlin-doctor-report", piped.stderr


@pytest.mark.parametrize("command", [["report", "--from", SNAPSHOT, "-q", "--force"], ["facts", "--fast"]])
def test_dev_full_stays_a_device_and_the_error_is_one_line(command: List[str]) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    result = doctor(*command, "-o", "/dev/full")
    assert result.returncode == 1
    assert one_line_error(result.stderr) == "merlin-doctor: error: /dev/full: No space left on device"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_facts_o_asks_for_force_before_replacing_a_file_it_did_not_write(tmp_path: Path) -> None:
    snapshot = Facts({"host": {"os": "Linux"}}, {"doctor_version": "test"})
    mine = tmp_path / "notes.txt"
    mine.write_text("my notes\n")
    with pytest.raises(InputError, match="add --force to replace it"):
        snapshot.save(str(mine))
    assert mine.read_text() == "my notes\n"
    snapshot.save(str(mine), force=True)
    assert Facts.load(str(mine)).probes == {"host": {"os": "Linux"}}
    snapshot.save(str(mine))  # an earlier snapshot is replaced without --force
    empty = tmp_path / "empty.json"
    empty.touch()
    snapshot.save(str(empty))  # so is an empty file (`facts -o out.json` after `> out.json`)
    cli_result = doctor("facts", "--fast", "-o", str(tmp_path / "notes.txt"))
    assert cli_result.returncode == 0, cli_result.stderr


def test_facts_o_on_the_cli_refuses_someone_elses_file() -> None:
    result = run_cli("facts", "--fast", "-o", str(REPO / "README.md"))
    assert result.exit_code == 2 and "add --force" in one_line_error(result.stderr)


# --- 4. the lock -----------------------------------------------------------------------------


def test_the_lock_is_taken_on_the_real_path(tmp_path: Path) -> None:
    prefix = make_env(tmp_path)
    alias = tmp_path / "alias"
    alias.symlink_to(prefix)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from merlin_doctor.setup.converge import hold_lock\n"
            "with hold_lock(Path(sys.argv[1]), 'holder'):\n print('held', flush=True); time.sleep(60)",
            str(prefix),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(REPO),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        recipe = write_recipe(tmp_path / "r.yml", ACTIVATE)
        started = time.monotonic()
        result = setup_only(tmp_path, alias, recipe, "activation")
        assert result.exit_code == 1 and f"PID {holder.pid}" in result.stderr
        assert time.monotonic() - started >= 3
    finally:
        holder.kill()
        holder.wait()
    assert not (prefix / "etc").exists()


# --- 5. read-only env, full disk -------------------------------------------------------------


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[callable]:
    """chattr +i on paths (undone after the test); skipped where the filesystem or user cannot."""
    made: List[Path] = []
    probe = tmp_path / "probe"
    probe.touch()
    try:
        tried = subprocess.run(["chattr", "+i", str(probe)], capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("chattr is not installed")
    if tried.returncode != 0:
        pytest.skip(f"chattr +i is not possible here: {tried.stderr.strip()}")
    subprocess.run(["chattr", "-i", str(probe)], check=True)

    def freeze(path: Path) -> None:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        made.append(path)

    yield freeze
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=False)


@pytest.mark.parametrize(
    "step, body, frozen",
    [
        ("activation", ACTIVATE, "etc/conda"),
        ("links", LINKS, "lib/python3.9/site-packages/tensorrt"),
        ("copies", COPIES, "lib"),
    ],
)
def test_a_read_only_env_fails_the_step_with_one_line(
    tmp_path: Path, immutable, step: str, body: str, frozen: str
) -> None:
    prefix = make_env(tmp_path)
    (prefix / "etc" / "conda").mkdir(parents=True)
    immutable(prefix / frozen)
    result = setup_only(tmp_path, prefix, write_recipe(tmp_path / "r.yml", body), step)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    line = next(line for line in result.stdout.splitlines() if f"] {step}" in line)
    assert "Operation not permitted" in line and str(prefix / frozen) in line, result.stdout


def test_a_log_in_a_read_only_directory_is_one_line_and_exit_1(tmp_path: Path, immutable) -> None:
    prefix = make_env(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    immutable(logs)
    result = run_cli(
        "setup",
        "--recipe",
        str(write_recipe(tmp_path / "r.yml", ACTIVATE)),
        "--prefix",
        str(prefix),
        "--yes",
        "--only",
        "activation",
        "--log",
        str(logs / "setup.log"),
    )
    assert result.exit_code == 1
    assert one_line_error(result.stderr) == f"merlin-doctor: error: {logs / 'setup.log'}: Operation not permitted"
    assert not (prefix / "etc").exists(), "nothing changes unrecorded"


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, filled up; skipped with the reason where mounting is not allowed."""
    mount = tmp_path / "small disk"
    mount.mkdir()
    tried = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if tried.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {tried.stderr.strip() or tried.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path) -> None:
    with open(mount / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


def test_a_full_disk_is_one_line_from_steps_log_report_and_facts(tmp_path: Path, full_disk: Path) -> None:
    prefix = make_env(full_disk)
    (prefix / "etc" / "conda" / "activate.d").mkdir(parents=True)
    fill(full_disk)
    recipe = write_recipe(tmp_path / "r.yml", ACTIVATE + COPIES)
    steps = setup_only(tmp_path, prefix, recipe, "activation", "copies")
    assert steps.exit_code == 1 and "No space left on device" in steps.stdout and "Traceback" not in steps.stderr
    assert not list((prefix / "etc" / "conda" / "activate.d").iterdir()), "nothing half-written"

    log = run_cli(
        "setup",
        "--recipe",
        str(recipe),
        "--prefix",
        str(make_env(tmp_path)),
        "--yes",
        "--only",
        "activation",
        "--log",
        str(full_disk / "setup.log"),
    )
    assert log.exit_code == 1
    assert str(full_disk / "setup.log") in one_line_error(log.stderr)

    report = run_cli("report", "--from", SNAPSHOT, "-o", str(full_disk / "r.json"), "-q")
    assert report.exit_code == 1
    assert one_line_error(report.stderr).endswith(f"{full_disk / 'r.json'}: No space left on device")
    assert not (full_disk / "r.json").exists()
    facts = doctor("facts", "--fast", "-o", str(full_disk / "f.json"))
    assert facts.returncode == 1
    assert one_line_error(facts.stderr).endswith(f"{full_disk / 'f.json'}: No space left on device")


# --- 5. malformed snapshots and flags ----------------------------------------------------------


def deep(n: int) -> str:
    return "[" * n + "]" * n


@pytest.mark.parametrize(
    "doc",
    [
        '{"schema_version": 1, "probes": {"nvml": 5}}',
        '{"schema_version": 1, "probes": {"nvml": []}}',
        '{"schema_version": 1, "meta": [], "probes": {}}',
        '{"schema_version": 1, "meta": "x", "probes": {}}',
        '{"schema_version": 1, "probes": {"host": {"a": ' + deep(5000) + "}}}",
        '{"schema_version": 1, "probes": {"host": {"a": ' + deep(80) + "}}}",
        '{"schema_version": 1, "probes": {"x": 1}, "pad": "' + "y" * 5_000_000 + '"}',
        '{"schema_version": "' + "z" * 5_000_000 + '", "probes": {}}',
        "\ufeff{}",
        "\xff\xfe",
        "null",
    ],
)
@pytest.mark.parametrize(
    "flag",
    [
        ["check", "--from"],
        ["check", "--fast", "--recipe", "cpu", "--cpu-ok", "--baseline"],
        ["report", "-q", "-o", "/dev/null", "--from"],
    ],
)
def test_malformed_snapshots_are_exit_2_with_one_short_line(tmp_path: Path, doc: str, flag: List[str]) -> None:
    path = tmp_path / "snap.json"
    path.write_bytes(doc.encode("utf-8", "surrogatepass") if not doc.startswith("\xff") else b"\xff\xfe\x00")
    if flag[0] == "check" and "--baseline" in flag:
        flag = ["check", "--from", SNAPSHOT, *flag[1:]]
    result = run_cli(*flag, str(path))
    assert result.exit_code == 2, (result.stdout[-500:], result.stderr)
    assert len(one_line_error(result.stderr)) < 400


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--timeout", "nan"],
        ["check", "--timeout", "inf"],
        ["check", "--timeout", "-inf"],
        ["check", "--timeout", "0"],
        ["facts", "--timeout", "NaN"],
        ["fleet", "--local", "1", "--timeout", "inf"],
        ["setup", "--prefix", "", "--dry-run"],
        ["setup", "--name", "", "--dry-run"],
        ["check", "--recipe", ""],
        ["check", "--only", ""],
        ["report", "-o", ""],
        ["check", "--nonsense"],
        ["nonsense"],
    ],
)
def test_bad_flags_are_exit_2_with_one_line(args: List[str]) -> None:
    result = run_cli(*args)
    assert result.exit_code == 2
    one_line_error(result.stderr)


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(InputError, match=r"r.yml:4: A: duplicate key \(first at line 3\)"):
        parse_recipe("name: x\nactivate:\n  A: {set: a}\n  A: {set: b}\n", "r.yml")


# --- 6. big inputs ---------------------------------------------------------------------------


def test_big_recipes_are_refused_at_once_and_the_largest_allowed_parses_fast(tmp_path: Path) -> None:
    started = time.monotonic()
    for text in (
        "name: x\ndescription: '" + "a" * 40_000_000 + "'\n",
        "name: x\nactivate:\n" + "".join(f"  V{i}: {{set: v}}\n" for i in range(50_000)),
    ):
        with pytest.raises(InputError, match="a recipe is a few kilobytes"):
            parse_recipe(text, "big.yml")
    assert time.monotonic() - started < 2
    n = 9_000  # about 230 KB: as large as a recipe may be
    text = "name: x\nactivate:\n" + "".join(f"  V{i}: {{set: 'v{i}'}}\n" for i in range(n))
    started = time.monotonic()
    recipe = parse_recipe(text, "big.yml")
    activate_script(recipe), deactivate_script(recipe)
    assert len(recipe.activate) == n and time.monotonic() - started < 5


def test_error_messages_cut_long_values() -> None:
    with pytest.raises(InputError) as err:
        parse_recipe("name: x\nexpect:\n  gpu: " + "z" * 200_000 + "\n", "r.yml")
    assert len(str(err.value)) < 200 and "…" in str(err.value)


# --- 7. probes blame the library ---------------------------------------------------------------


@pytest.fixture(scope="module")
def compiler() -> Compiler:
    return Compiler(default_cache_dir())


def judged(scenario, *args: str) -> Dict[str, dict]:
    result = scenario.run(
        [sys.executable, "-m", "merlin_doctor", "check", "--fast", "--json", "--timeout", "5", *args], timeout=120
    )
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    return {v["id"]: v for v in json.loads(result.stdout)["verdicts"]}


def test_an_nvml_that_crashes_is_named_not_taken_for_a_missing_driver(tmp_path: Path, compiler: Compiler) -> None:
    scenario = build_scenario("healthy-t4", tmp_path / "root", compiler=compiler)
    conf = scenario.root / "gpu_sim.conf"
    conf.write_text(conf.read_text().replace("nvml_init=ok", "nvml_init=segv"))
    verdict = judged(scenario, "--only", "gpu.nvml")["gpu.nvml"]
    library = next(str(d / "libnvidia-ml.so.1") for d in scenario.system_lib_dirs)
    assert verdict["status"] == "fail" and "no NVIDIA driver" not in verdict["summary"]
    assert f"libnvidia-ml.so.1 ({library}) killed the process with SIGSEGV" in verdict["summary"]


def test_an_nvml_returning_non_utf8_names_still_answers(tmp_path: Path, compiler: Compiler) -> None:
    scenario = build_scenario("healthy-t4", tmp_path / "root", compiler=compiler)
    conf = scenario.root / "gpu_sim.conf"
    conf.write_bytes(conf.read_bytes().replace(b"device.0.name=Tesla T4", b"device.0.name=Tesla \xff\xfe T4"))
    verdict = judged(scenario, "--only", "gpu.nvml")["gpu.nvml"]
    assert verdict["status"] == "pass", verdict
    assert "Tesla \ufffd\ufffd T4" in verdict["summary"]


def test_a_cuda_library_that_exits_while_loading_is_named(tmp_path: Path, compiler: Compiler) -> None:
    scenario = build_scenario("healthy-t4", tmp_path / "root", compiler=compiler)
    cudnn = next(lib for lib in scenario.libraries if lib.soname == "libcudnn.so.8")
    source = tmp_path / "exit.c"
    source.write_text("#include <unistd.h>\n__attribute__((constructor)) static void quit(void) { _exit(0); }\n")
    Path(cudnn.path).unlink()
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-Wl,-soname,libcudnn.so.8", "-o", str(cudnn.path), str(source)], check=True
    )
    verdict = judged(scenario, "--only", "cuda.libcudnn")["cuda.libcudnn"]
    assert verdict["status"] == "fail" and "not on the loader path" not in verdict["summary"]
    assert f"loading {cudnn.path} ended the process" in verdict["summary"], verdict["summary"]


# --- 9. redaction ------------------------------------------------------------------------------


def test_secrets_inside_path_values_and_channel_tokens_are_redacted_everywhere() -> None:
    from merlin_doctor.report import build_report
    from merlin_doctor.verdict import Status, Verdict

    facts = {
        "schema_version": 1,
        "meta": {},
        "probes": {
            "activation": {"variables": {"LD_LIBRARY_PATH": "/opt/token=SECRET1/lib"}},
            "cuda_libs": {
                "libraries": [
                    {
                        "soname": "libcudnn.so.8",
                        "owner": {
                            "kind": "conda",
                            "name": "cudnn",
                            "channel": "https://conda.anaconda.org/t/tk-12345678-SECRET2/nvidia",
                        },
                    }
                ]
            },
            "packages": {"distributions": {}},
        },
    }
    verdicts = [
        Verdict(
            "activation.ld-path",
            Status.FAIL,
            "LD_LIBRARY_PATH=/opt/token=SECRET3/lib lacks the env",
            evidence={"url": "https://conda.anaconda.org/t/tk-12345678-SECRET4/conda-forge/x.conda"},
        )
    ]
    doc, _ = build_report(facts, verdicts, "cpu", 1, Identity(), "now")
    text = json.dumps(doc)
    assert "SECRET" not in text and "SECRET" not in doc["markdown"]
    assert "/t/<secret>/nvidia" in text and "token=<secret>" in doc["markdown"]
    assert redact(doc["verdicts"]).data == doc["verdicts"], "redacting twice changes nothing"


def test_setup_plan_and_log_never_show_channel_or_index_credentials(tmp_path: Path) -> None:
    prefix = make_env(tmp_path)
    recipe = tmp_path / "r.yml"
    recipe.write_text(
        "name: creds\nconda:\n  channels: ['https://conda.anaconda.org/t/tk-SECRET1/nvidia',"
        " 'https://me:SECRET2@conda.example/chan']\n  dependencies: [python=3.9]\n"
        "pip:\n  - name: g\n    requirements: [absent-package==1.0]\n"
        "    index_url: https://me:SECRET3@pypi.example/simple\n"
    )
    dry = run_cli("setup", "--recipe", str(recipe), "--prefix", str(prefix), "--engine", "conda", "--dry-run", "--json")
    assert "SECRET" not in dry.stdout + dry.stderr and "<credentials>@pypi.example" in dry.stdout
    ran = setup_only(tmp_path, prefix, recipe, "pip")
    assert ran.exit_code == 1 and "SECRET" not in ran.stdout + ran.stderr
    log = (tmp_path / "setup.log").read_text()
    assert "https://<credentials>@pypi.example/simple" in log and "SECRET" not in log


def test_mask_credentials_keeps_plain_urls() -> None:
    plain = "pip install --extra-index-url https://pypi.nvidia.com cudf-cu11 /t/x/ a@b"
    assert mask_credentials(plain) == plain
