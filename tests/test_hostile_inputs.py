"""Generated hostile input (hypothesis) for every reader the user can feed: the recipe parser,
the snapshot loader and what judges a loaded snapshot, explain's reader, and the CLI's flags.

The property is the same everywhere: the doctor ends with exit 0, 1 or 2 (or, called as a
function, a result or an InputError), never a traceback, with a single short line on exit 2,
within a time bound. CLI cases run in-process with click's runner; a few run as subprocesses
to prove stderr holds no traceback. Example counts are bounded (SUITES below) so the whole
module stays well under a minute per suite; `--hypothesis-show-statistics` prints the counts.
"""

from __future__ import annotations

import copy
import io
import json
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml
from click.testing import CliRunner
from conftest import FIXTURES, REPO
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from merlin_doctor.activation import activate_script, deactivate_script
from merlin_doctor.baseline import compare
from merlin_doctor.cli import cli
from merlin_doctor.errors import InputError
from merlin_doctor.explain import explain_file, explain_stream
from merlin_doctor.facts import Facts
from merlin_doctor.recipe import PLACEHOLDERS, parse_recipe
from merlin_doctor.redact import Identity
from merlin_doctor.report import build_report
from merlin_doctor.runner import run_checks

SNAPSHOT = str(FIXTURES / "facts" / "cpu-venv-py39.json")
GPU_SNAPSHOT = str(FIXTURES / "facts" / "gpu-t4-healthy.json")
MAX_MESSAGE = 1100  # one_line() cuts at 1000 characters, plus the prefix and the file name

#: Examples per suite (each a generated input); the totals are what the issue's note reports.
SUITES = {
    "recipe_structured": 1200,
    "recipe_text": 700,
    "snapshot": 400,
    "snapshot_cli": 150,
    "explain": 500,
    "explain_wide": 150,
    "explain_cli": 100,
    "flags": 400,
}


def bounded(n: int, seconds: float = 5.0):
    """A suite's settings: `n` examples, each within `seconds`, reproducible, no example database."""
    return settings(
        max_examples=n,
        deadline=seconds * 1000,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
            HealthCheck.filter_too_much,
        ],
    )


def assert_one_line(message: str) -> None:
    assert "\n" not in message and "\r" not in message and len(message) < MAX_MESSAGE, message[:300]


@pytest.fixture(scope="module")
def scratch() -> Path:
    with tempfile.TemporaryDirectory(prefix="hostile-") as name:
        yield Path(name)


def runner() -> CliRunner:
    return CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()


def invoke(args: List[str], stdin: bytes = b"") -> Any:
    """The CLI in-process; anything but SystemExit escaping it is a traceback the user would see."""
    result = runner().invoke(cli, args, input=stdin, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"traceback for {args!r}") from result.exception
    assert result.exit_code in (0, 1, 2), (args, result.exit_code)
    event(f"{args[0] if args else '(none)'}: exit {result.exit_code}")
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("merlin-doctor: error: "), (args, result.stderr[-500:])
        assert_one_line(lines[0])
    return result


# --- edits of real documents: most stay valid, some break in one place -------------------------


def all_paths(doc: Any, path: tuple = ()) -> List[tuple]:
    """Every node's path (dict keys and list indexes), the root included."""
    out = [path]
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        out += all_paths(value, path + (key,))
    return out


@st.composite
def edited(draw, base: Any, new_values: st.SearchStrategy, new_keys: st.SearchStrategy, max_edits: int = 3) -> Any:
    """`base` with up to `max_edits` edits: a node replaced, deleted, renamed, or a key added."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, max_edits))):
        path = draw(st.sampled_from(all_paths(doc)))
        if not path:
            doc = draw(new_values) if draw(st.integers(0, 9)) == 0 else doc
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        key, action = path[-1], draw(st.sampled_from(["replace", "replace", "delete", "rename", "add"]))
        if action == "replace":
            parent[key] = draw(new_values)
        elif action == "delete":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(new_keys)] = parent.pop(key)
        elif action == "add" and isinstance(parent, dict):
            parent[draw(new_keys)] = draw(new_values)
    return doc


# --- the recipe parser ----------------------------------------------------------------------

NASTY = [
    "",
    " ",
    "..",
    "../..",
    "/",
    "/etc/shadow",
    "{prefix}",
    "{prefix}/..",
    "{prefix}/../x",
    "{prefix}x",
    "{site_packages}/tensorrt",
    "{prefix}/lib",
    "{prefx}/a",
    "{}",
    "$(touch pwned)",
    "`id`",
    "'",
    '"',
    "a\nb",
    "a\rb",
    "a\x00b",
    "\x1b[31m",
    "x" * 300,
    "ü",
    "\ud7ff",
    "lib/../../x",
    "~",
    "-",
    "null",
    "yes",
]
text_values = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.builds(
        lambda a, b: a + b,
        st.sampled_from(["{prefix}/", "{site_packages}/", "/", ""]),
        st.text(alphabet=string.ascii_letters + "/._-{}\n\r\x00", max_size=30),
    ),
)
scalars = st.one_of(text_values, st.integers(-10, 10**30), st.booleans(), st.none(), st.floats(allow_nan=True))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text_values, inner, max_size=4)),
    max_leaves=12,
)
link = st.fixed_dictionaries({}, optional={"dir": values, "name": values, "target": values, "extra": values})
copy_entry = st.fixed_dictionaries({}, optional={"from": values, "to": values})
env_var = st.fixed_dictionaries({}, optional={"set": values, "prepend": values, "append": values})
recipe_docs = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.just("ok"), text_values, values),
        "description": values,
        "env_name": values,
        "kind": st.sampled_from(["conda", "container", "vm", ""]),
        "image": values,
        "image_compressed_bytes": scalars,
        "sources": values,
        "conda": st.fixed_dictionaries(
            {}, optional={"channels": values, "dependencies": st.lists(text_values, max_size=3)}
        ),
        "pip": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "name": text_values,
                    "requirements": st.lists(text_values, max_size=3),
                    "optional": scalars,
                    "index_url": values,
                },
            ),
            max_size=3,
        ),
        "links": st.one_of(values, st.lists(link, max_size=3)),
        "copies": st.one_of(values, st.lists(copy_entry, max_size=3)),
        "activate": st.one_of(values, st.dictionaries(text_values, st.one_of(env_var, values), max_size=4)),
        "expect": st.one_of(
            values,
            st.fixed_dictionaries({}, optional={"python": text_values, "gpu": text_values, "cuda_runtime": scalars}),
        ),
    },
)
#: Text edits that a dump cannot produce: tags, anchors, duplicate keys, complex keys, tabs, BOMs.
EDITS = [
    "!foo ",
    "!!python/object:os.system ",
    "&a ",
    "*a ",
    "? [1, 2]\n: x\n",
    "name: dup\n",
    "\t",
    "\ufeff",
    "<<: {name: y}\n",
    "%YAML 1.1\n---\n",
    "--- \n",
    "...\n",
    "- ",
    "{",
    "[",
    '"\\',
    "'",
    "\x00",
    "\x85",
]


def check_parsed(text: str) -> None:
    """parse_recipe either builds a recipe whose paths stay in the env, or says what is wrong in one line."""
    started = time.monotonic()
    try:
        recipe = parse_recipe(text, "gen.yml")
    except InputError as exc:
        assert_one_line(str(exc))
        event("refused")
        return
    finally:
        assert time.monotonic() - started < 3, "parsing is linear and small recipes parse in milliseconds"
    assert not any(c in recipe.name for c in "\n\r\x00")
    for path in [x.dir for x in recipe.links] + [c.src for c in recipe.copies] + [c.dst for c in recipe.copies]:
        assert path.split("/")[0] in {f"{{{p}}}" for p in PLACEHOLDERS} and ".." not in path.split("/")
    for x in recipe.links:
        assert "/" not in x.name and x.name not in (".", "..") and not x.target.startswith("/")
    activate_script(recipe), deactivate_script(recipe)  # a loaded recipe always renders
    event("loaded")


RECIPE_KEYS = st.one_of(
    st.sampled_from(
        [
            "name",
            "links",
            "copies",
            "activate",
            "dir",
            "name",
            "target",
            "from",
            "to",
            "set",
            "prepend",
            "append",
            "kind",
            "image",
            "expect",
            "gpu",
            "pip",
        ]
    ),
    text_values,
)
BUILTIN = yaml.safe_load((REPO / "merlin_doctor" / "recipes" / "tf210-cuda112.yml").read_text())


@bounded(SUITES["recipe_structured"])
@given(
    doc=st.one_of(edited(BUILTIN, values, RECIPE_KEYS), edited(BUILTIN, values, RECIPE_KEYS), recipe_docs),
    edit=st.one_of(st.none(), st.none(), st.tuples(st.sampled_from(EDITS), st.integers(0, 10**6))),
)
def test_generated_recipes_load_or_fail_in_one_line(doc: Dict[str, Any], edit) -> None:
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    if edit is not None:
        piece, at = edit
        at %= len(text) + 1
        text = text[:at] + piece + text[at:]
    check_parsed(text)


@bounded(SUITES["recipe_text"])
@given(
    text=st.one_of(
        st.text(max_size=400),
        st.lists(
            st.sampled_from(
                EDITS
                + [
                    "name: x\n",
                    "links:\n",
                    "  - {dir: a}\n",
                    "activate:\n",
                    "  A: {set: b}\n",
                    "copies: []\n",
                    "  ",
                    "\n",
                    ":",
                ]
            ),
            max_size=30,
        ).map("".join),
    )
)
def test_arbitrary_text_as_a_recipe_loads_or_fails_in_one_line(text: str) -> None:
    check_parsed(text)


# --- the snapshot loader and what reads a loaded snapshot ------------------------------------

PROBE_NAMES = [
    "host",
    "nvml",
    "cuda_libs",
    "activation",
    "packages",
    "interpreter",
    "recipe_files",
    "kernel",
    "libcuda",
    "tensorflow",
    "tf_build",
    "container_host",
    "identity",
    "x",
]
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.sampled_from(NASTY),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)
probe_facts = st.dictionaries(
    st.sampled_from(
        [
            "loaded",
            "error",
            "devices",
            "libraries",
            "distributions",
            "env",
            "scripts",
            "variables",
            "prefix",
            "driver_version",
            "crashed",
            "timed_out",
            "soname",
            "path",
            "version",
            "links",
            "copies",
        ]
    ),
    json_values,
    max_size=6,
)
FIXTURE_DOCS = [json.loads(Path(p).read_text()) for p in (SNAPSHOT, GPU_SNAPSHOT)]
for _doc in FIXTURE_DOCS:  # smaller bases: every package but a few, every log line but a few
    _dists = _doc["probes"].get("packages", {}).get("distributions", {})
    for _name in list(_dists)[8:]:
        del _dists[_name]
snapshots = st.one_of(
    edited(FIXTURE_DOCS[0], json_values, st.one_of(st.sampled_from(PROBE_NAMES), st.text(max_size=8))),
    edited(FIXTURE_DOCS[1], json_values, st.one_of(st.sampled_from(PROBE_NAMES), st.text(max_size=8))),
    st.fixed_dictionaries(
        {"probes": st.dictionaries(st.sampled_from(PROBE_NAMES), st.one_of(probe_facts, json_values), max_size=6)},
        optional={"schema_version": st.one_of(st.just(1), json_leaf), "meta": json_values},
    ),
)


def as_bytes(doc: Any, wrap: str, deep: int) -> bytes:
    """The document as a file's bytes, maybe wrapped as `check --json` output, maybe with one probe
    nested `deep` levels (written as text: json.dumps itself cannot nest that deep)."""
    if wrap == "check-json" and isinstance(doc, dict):
        doc = {"schema_version": 1, "verdicts": [], "facts": doc}
    text = json.dumps(doc, allow_nan=True)
    probes = (doc.get("facts", doc) if isinstance(doc, dict) else {}).get("probes") if isinstance(doc, dict) else None
    if deep and isinstance(probes, dict):
        nested = '"zz_deep": {"n": ' + "[" * deep + "]" * deep + "}" + (", " if probes else "")
        text = text.replace('"probes": {', '"probes": {' + nested, 1)
    return text.encode()


@pytest.fixture(scope="module")
def judged_things():
    from merlin_doctor.checks import all_checks
    from merlin_doctor.recipe import load_recipe

    good = Facts.load(SNAPSHOT).to_dict()
    return all_checks(), load_recipe("cpu"), good


@bounded(SUITES["snapshot"])
@given(
    doc=snapshots,
    wrap=st.sampled_from(["plain", "check-json"]),
    deep=st.sampled_from([0, 0, 0, 0, 0, 5, 70, 5000]),
    raw=st.one_of(st.none(), st.none(), st.none(), st.binary(max_size=200)),
)
def test_generated_snapshots_load_and_judge_or_fail_in_one_line(
    scratch: Path, judged_things, doc, wrap, deep, raw
) -> None:
    from merlin_doctor.options import CheckOptions

    path = scratch / "snap.json"
    path.write_bytes(raw if raw is not None else as_bytes(doc, wrap, deep))
    try:
        loaded = Facts.load(str(path))
    except InputError as exc:
        assert_one_line(str(exc))
        event("refused")
        return
    event("loaded and judged")
    checks, recipe, good = judged_things
    verdicts = run_checks(checks, loaded, recipe, CheckOptions(fast=True))  # a check that raises is an error verdict
    assert {v.id for v in verdicts}
    compare(good, loaded.to_dict())
    compare(loaded.to_dict(), good)
    report, _ = build_report(
        loaded.to_dict(), verdicts, "cpu", 1, Identity(("alice",), ("box",), ("/home/alice",)), "now"
    )
    assert isinstance(report["markdown"], str)


@bounded(SUITES["snapshot_cli"], seconds=10)
@given(
    doc=snapshots,
    deep=st.sampled_from([0, 0, 0, 70]),
    flags=st.sampled_from(
        [
            ["check", "--fast", "--from"],
            ["check", "--from", SNAPSHOT, "--fast", "--baseline"],
            ["report", "-q", "--force", "-o", "/dev/null", "--from"],
            ["check", "--json", "--fast", "--cpu-ok", "--recipe", "cpu", "--from"],
        ]
    ),
)
def test_generated_snapshots_on_the_cli_end_with_0_1_or_2(scratch: Path, doc, deep, flags) -> None:
    path = scratch / "cli-snap.json"
    path.write_bytes(as_bytes(doc, "plain", deep))
    invoke([*flags, str(path)])


# --- explain's reader -----------------------------------------------------------------------

LOG_LINES = [
    "Could not load dynamic library 'libcudnn.so.8'; dlerror: libcudnn.so.8: cannot open shared object file",
    "W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library",
    "Traceback (most recent call last):",
    "ImportError: libcublas.so.11: cannot open shared object file",
    "NVMLError_LibraryNotFound",
    "RuntimeError: Found no NVIDIA driver on your system.",
    "ERROR: pip's dependency resolver does not currently take into account",
    "\x1b[31mred\x1b[0m",
    "\r",
    "progress 10%\rprogress 20%\r",
    "x" * 5000,
    "\x00\x00",
    "\ufeff",
    "ü€𝄞",
]
logs = st.lists(st.one_of(st.sampled_from(LOG_LINES), st.text(max_size=80)), max_size=40).map("\n".join)
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1"]


@bounded(SUITES["explain"])
@given(text=logs, encoding=st.sampled_from(ENCODINGS), raw=st.one_of(st.none(), st.binary(max_size=2000)))
def test_explain_reads_any_bytes(text: str, encoding: str, raw) -> None:
    data = raw if raw is not None else text.encode(encoding, "replace")
    started = time.monotonic()
    result = explain_stream(io.BytesIO(data))
    assert result.exit_code in (0, 1) and time.monotonic() - started < 3
    json.dumps(result.to_dict())


@bounded(SUITES["explain_wide"])
@given(
    lines=st.lists(st.sampled_from(LOG_LINES[:7]), min_size=1, max_size=12),
    encoding=st.sampled_from(["utf-16", "utf-32", "utf-8-sig"]),
)
def test_explain_reads_utf16_and_utf32_logs_as_it_reads_utf8(lines: List[str], encoding: str) -> None:
    text = "\n".join(lines) + "\n"
    ids = lambda data: [m.id for m in explain_stream(io.BytesIO(data)).matches]  # noqa: E731
    assert ids(text.encode(encoding)) == ids(text.encode("utf-8"))


@bounded(SUITES["explain_cli"])
@given(text=logs, encoding=st.sampled_from(ENCODINGS), as_json=st.booleans(), via_stdin=st.booleans())
def test_explain_on_the_cli_ends_with_0_1_or_2(
    scratch: Path, text: str, encoding: str, as_json: bool, via_stdin: bool
) -> None:
    data = text.encode(encoding, "replace")
    path = scratch / "log.txt"
    path.write_bytes(data)
    args = ["explain", "-" if via_stdin else str(path)] + (["--json"] if as_json else [])
    result = invoke(args, stdin=data)
    assert result.exit_code in (0, 1)
    assert explain_file(str(path)).exit_code == result.exit_code


# --- the CLI's flags --------------------------------------------------------------------------

numbers = st.one_of(
    st.sampled_from(["1", "5", "30", "2.5"]),
    st.sampled_from(
        [
            "nan",
            "NaN",
            "inf",
            "-inf",
            "Infinity",
            "0",
            "-1",
            "0.5",
            "1e309",
            "1e-300",
            "",
            " ",
            "abc",
            "3s",
            "0x10",
            "1_000",
        ]
    ),
)
hostile_words = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "-",
            "--",
            "nosuch",
            "../../etc/passwd",
            "/dev/null",
            "x" * 5000,
            "a\nb",
            "\x7f",
            str(REPO / "README.md"),
            "/nonexistent/file",
            "gpu..",
            "{prefix}",
            "$(id)",
        ]
    ),
    # argv holds no NUL
    st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=20),
)


def either(*valid: str) -> st.SearchStrategy:
    """Mostly a valid value, sometimes a hostile one."""
    return st.one_of(st.sampled_from(valid), st.sampled_from(valid), hostile_words)


def opt(name: str, value: st.SearchStrategy) -> st.SearchStrategy:
    return value.map(lambda v: [name, v])


def flags(*names: str) -> st.SearchStrategy:
    return st.sampled_from(names).map(lambda n: [n])


RECIPES = either("cpu", "tf210-cuda112", "merlin-tensorflow-23.02")
CHECK_IDS = either("gpu", "gpu.nvml", "host", "python", "activation", "env", "packages", "cuda.libcudnn", "tf")
CHECK = [
    opt("--timeout", numbers),
    opt("--recipe", RECIPES),
    opt("--only", CHECK_IDS),
    opt("--skip", CHECK_IDS),
    flags("--json", "-q", "-v", "--strict", "--cpu-ok", "--debug", "--host", "--bogus", "-h"),
    opt("--device", either("auto", "cpu", "gpu")),
    opt("--e2e-size", either("quick", "standard", "burn-in")),
    opt("--baseline", either(SNAPSHOT, GPU_SNAPSHOT)),
]
REPORT = [opt("--timeout", numbers), opt("--recipe", RECIPES), flags("--markdown", "-q", "--cpu-ok", "--bogus")]
SETUP = [
    opt("--recipe", RECIPES),
    opt("--only", either("env", "pip", "links", "activation", "copies")),
    opt("--name", either("merlin", "test-env")),
    opt("--prefix", either("env dir", "/tmp/merlin-hostile-env")),
    opt("--engine", either("auto", "rattler", "conda", "micromamba")),
    opt("--log", either("setup.log")),
    flags("--json", "-q", "--force", "--yes", "--bogus"),
]
OTHER = {
    "explain": [opt("--json", st.just("-")), flags("--all", "--json", "--bogus")],
    "recipes": [st.builds(lambda w: [w], RECIPES), flags("--environment-yml", "--bogus")],
    "list": [flags("--json", "--bogus")],
    "nosuch": [st.builds(lambda w: [w], hostile_words)],
}


@st.composite
def command_lines(draw) -> List[str]:
    """A command with random flags, in forms that never change this machine or probe it slowly:
    check and report judge a saved snapshot, setup only plans, explain reads stdin, fleet is
    refused at its flags (never started)."""
    command = draw(
        st.sampled_from(["check", "check", "report", "setup", "explain", "recipes", "list", "fleet", "nosuch"])
    )
    pick = {"check": CHECK, "report": REPORT, "setup": SETUP}.get(command) or OTHER.get(command) or [st.just([])]
    extra = [w for part in draw(st.lists(st.one_of(*pick), max_size=5)) for w in part]
    if command in ("check", "report"):
        fixed = ["--from", draw(st.sampled_from([SNAPSHOT, GPU_SNAPSHOT])), "--fast"]
        return [command, *extra, *fixed] + (["-o", "/dev/null", "--force"] if command == "report" else [])
    if command == "setup":
        return [command, *extra, "--dry-run"]
    if command == "fleet":
        return [command, "--timeout", draw(numbers), "--scheduler", "tcp://x", "--local", "1"]  # both: refused
    return [command, *extra]


@bounded(SUITES["flags"], seconds=10)
@given(args=command_lines())
def test_generated_command_lines_end_with_0_1_or_2(scratch: Path, monkeypatch, args: List[str]) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(scratch / "state"))
    monkeypatch.setenv("HOME", str(scratch / "home"))
    monkeypatch.chdir(scratch)
    result = invoke(args)
    if args[0] == "fleet":
        assert result.exit_code == 2


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--timeout", "nan", "--fast"],
        ["check", "--from", str(REPO / "README.md")],
        ["setup", "--prefix", "", "--dry-run"],
        ["report", "--from", SNAPSHOT, "-o", "/dev/full", "--force", "-q"],
        ["explain", "/dev/null/x"],
        ["recipes", "x" * 5000],
        ["check", "--from", "/dev/zero"],
    ],
)
def test_no_traceback_reaches_stderr_in_a_real_process(args: List[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "merlin_doctor", *args], capture_output=True, text=True, cwd=str(REPO), timeout=120
    )
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("merlin-doctor: error: ")
    assert_one_line(lines[0])
