"""Recipes: one YAML file per supported stack, validated with file, line and key in errors.

A recipe says how to build an env (conda part, pip groups, links, activation variables,
copies) and what the doctor judges it against (`expect`). The schema is documented in
the README; `SCHEMA` below is its single source of truth.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from merlin_doctor.errors import InputError

RECIPES_DIR = Path(__file__).parent / "recipes"
DEFAULT_RECIPE = "tf210-cuda112"
DEFAULT_CONTAINER_RECIPE = "merlin-tensorflow-23.02"  # the article's first route
PLACEHOLDERS = ("prefix", "site_packages")
GPU_MODES = ("required", "optional", "none")
#: conda: the doctor builds a conda env; venv: a Python venv with pip wheels only (no conda
#: at all); container: the stack ships in an image, nothing is built.
KINDS = ("conda", "venv", "container")
#: Keys each kind may not have (the others are shared).
NOT_FOR_KIND = {
    "conda": ("image", "image_compressed_bytes", "python"),
    "venv": ("image", "image_compressed_bytes", "conda"),
    "container": ("env_name", "conda", "links", "activate", "copies", "python"),
}
#: Keys each kind must have.
REQUIRED_FOR_KIND = {
    "conda": (),
    "venv": ("python",),
    "container": ("image",),
}


_CONDA_SPEC = re.compile(r"^\s*(?:[^:\s]+::)?([A-Za-z0-9_][A-Za-z0-9_.\-]*)\s*(.*?)\s*$")


def conda_spec(spec: str) -> Optional[Tuple[str, str]]:
    """A conda match spec's package name and constraint (`nvidia::cuda-nvcc=11.3.58` is
    (`cuda-nvcc`, `=11.3.58`)), or None when it names no package."""
    match = _CONDA_SPEC.match(spec)
    return (match.group(1), match.group(2)) if match else None


@dataclass
class PipGroup:
    name: str
    requirements: List[str]
    extra_index_urls: List[str] = field(default_factory=list)
    index_url: Optional[str] = None
    find_links: List[str] = field(default_factory=list)
    no_index: bool = False
    optional: bool = False
    #: Only a GPU uses it (the CUDA wheels): judged on a CPU recipe or under --cpu-ok, a missing one
    #: is noted like an optional group's, never a failure; setup still installs it.
    gpu: bool = False
    why: str = ""

    def pip_options(self) -> List[str]:
        """This group's index options for `pip install`, in pip's own words."""
        options = ["--index-url", self.index_url] if self.index_url else []
        for url in self.extra_index_urls:
            options += ["--extra-index-url", url]
        for place in self.find_links:
            options += ["--find-links", place]
        return options + (["--no-index"] if self.no_index else [])

    def install_command(self, requirements: List[str], force: bool = False) -> str:
        """`python -m pip install` of these requirements with this group's index options, quoted for a shell.
        `force` reinstalls exactly them (--no-deps): re-resolving their dependencies could pull newer
        ones the stack cannot take (numpy 2 under TensorFlow 2.10)."""
        forced = ["--force-reinstall", "--no-deps"] if force else []
        words = ["python", "-m", "pip", "install", *forced, *self.pip_options()]
        return " ".join(shlex.quote(w) for w in words + list(requirements))


@dataclass
class Link:
    dir: str
    name: str
    target: str


@dataclass
class Copy:
    src: str
    dst: str


@dataclass
class EnvVar:
    """How the activation script changes one variable: prepend/append path entries, or set."""

    name: str
    prepend: List[str] = field(default_factory=list)
    append: List[str] = field(default_factory=list)
    set: Optional[str] = None


@dataclass
class AcceptedConflict:
    """A requirement conflict a prebuilt image ships knowingly: reported, not failed."""

    package: str
    requires: str
    why: str


@dataclass(frozen=True)
class Expect:
    """What the checks judge an env against (the recipe's `expect:`); None: not judged."""

    python: Optional[str] = None
    tensorflow: Optional[str] = None
    cuda_runtime: Optional[str] = None
    cudnn: Optional[str] = None
    tensorrt: Optional[str] = None
    tensorrt_soname: Optional[str] = None
    e2e: Optional[str] = None
    gpu: str = "required"

    def constraint(self, key: str) -> Optional[str]:
        """A constraint by the name a knowledge table uses for it (`cudnn`, `cuda_runtime`)."""
        value = getattr(self, key)
        return None if value is None else str(value)


@dataclass
class Recipe:
    name: str
    path: str
    description: str = ""
    kind: str = "conda"
    image: Optional[str] = None
    image_compressed_bytes: Optional[int] = None
    accepted_conflicts: List[AcceptedConflict] = field(default_factory=list)
    env_name: Optional[str] = None
    venv_python: Optional[str] = None  # kind venv: the `major.minor` of the venv's Python
    channels: List[str] = field(default_factory=list)
    conda_dependencies: List[str] = field(default_factory=list)
    pip: List[PipGroup] = field(default_factory=list)
    links: List[Link] = field(default_factory=list)
    activate: List[EnvVar] = field(default_factory=list)
    copies: List[Copy] = field(default_factory=list)
    expect: Expect = field(default_factory=Expect)
    sources: List[str] = field(default_factory=list)

    @property
    def python_version(self) -> Optional[str]:
        """The `major.minor` of the env's Python: a venv recipe's `python`, else the conda
        part's pin (`python=3.9` or `python=3.9.18`)."""
        if self.venv_python:
            return self.venv_python
        for dep in self.conda_dependencies:
            m = re.match(r"^python\s*[=<>]*=?\s*(\d+\.\d+)", dep)
            if m:
                return m.group(1)
        return None

    def conda_dependency(self, name: str) -> Optional[str]:
        """The conda part's spec for package `name` (`nvidia::cuda-nvcc=11.3.58` for `cuda-nvcc`), or None."""
        return next((d for d in self.conda_dependencies if (conda_spec(d) or ("",))[0] == name), None)

    @property
    def gpu(self) -> str:
        return self.expect.gpu

    def on_cpu(self) -> Recipe:
        """This recipe judged for a machine meant to run on the CPU (`--cpu-ok`): as `gpu: none`."""
        return dataclasses.replace(self, expect=dataclasses.replace(self.expect, gpu="none"))

    @property
    def is_container(self) -> bool:
        return self.kind == "container"

    @property
    def is_venv(self) -> bool:
        return self.kind == "venv"

    def site_packages(self, prefix: str) -> str:
        version = self.python_version or "3.9"
        return f"{prefix}/lib/python{version}/site-packages"

    def expand(self, template: str, prefix: str) -> str:
        """Fill `{prefix}` and `{site_packages}` for a concrete env prefix."""
        return template.replace("{site_packages}", self.site_packages(prefix)).replace("{prefix}", prefix)

    def image_fix(self) -> str:
        """A container's packages come with its image: pip-replacing NVIDIA's builds would break it."""
        return (
            f"docker pull {self.image}  # the image ships these packages; run the doctor in an unchanged "
            "container rather than pip-installing over NVIDIA's TensorFlow and cuDF"
        )

    def install_command(self, packages: List[str], force: bool = False) -> Optional[str]:
        """The pip command that installs these packages at this recipe's pins (each group with its
        own index options, in install order); None when the recipe pins none of them. For a
        container recipe, the image's own fix: nothing is pip-installed over NVIDIA's builds."""
        if self.is_container:
            return self.image_fix()
        wanted = {canonicalize_name(p) for p in packages}
        commands = []
        for group in self.pip:
            reqs = [r for r in group.requirements if canonicalize_name(Requirement(r).name) in wanted]
            if reqs:
                commands.append(group.install_command(reqs, force))
        return " && ".join(commands) or None

    def requirements(self) -> List[tuple]:
        """Every pip requirement with the group it belongs to, in install order."""
        return [(Requirement(r), g) for g in self.pip for r in g.requirements]


# --- validation over YAML nodes, so every error can name its line -----------------
#
# The text is composed once (libyaml when present) and every check reads the nodes: values
# are built from the nodes that were checked, never by parsing the text a second time, so
# the cost is linear in the input and what is judged is exactly what is used.

Validator = Callable[[yaml.Node, str, str], None]

#: A recipe is a few kilobytes; anything near this is a mistake (or an attack), not a recipe.
#: Parsing is linear (about a second for this much), and the limit says so at once.
MAX_RECIPE_BYTES = 256 * 1024
#: Recipes nest four levels; deeper input is refused before anything walks it.
MAX_DEPTH = 32
#: Tags a recipe may use: YAML's plain scalars and collections, nothing that builds objects.
_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")}
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PATH_ROOTS = tuple(f"{{{p}}}" for p in PLACEHOLDERS)


def shown(value: Any, limit: int = 60) -> str:
    """A value in an error message: quoted, control characters escaped, long ones cut."""
    text = value if isinstance(value, str) else str(value)
    cut = text[:limit] + ("…" if len(text) > limit else "")
    return "'" + _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", cut) + "'"


def _fail(node: yaml.Node, file: str, key: str, message: str) -> None:
    key = shown(key, 80)[1:-1]
    raise InputError(f"{key}: {message}" if key else message, file, node.start_mark.line + 1)


def _value(node: yaml.Node, file: str, key: str) -> Any:
    """A scalar node's value, built by its resolved tag (no emitter, no second parse)."""
    try:
        return _CONSTRUCTOR.yaml_constructors[node.tag](_CONSTRUCTOR, node)
    except (ValueError, OverflowError, yaml.YAMLError):
        _fail(node, file, key, f"not a valid {node.tag.rsplit(':', 1)[-1]}: {shown(node.value)}")


def _plain(node: yaml.Node, file: str, key: str = "") -> Any:
    """The Python value of a checked node (mapping keys are the strings written)."""
    if isinstance(node, yaml.MappingNode):
        return {k.value: _plain(v, file, k.value) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_plain(v, file, key) for v in node.value]
    return _value(node, file, key)


def _check_structure(root: yaml.Node, file: str) -> None:
    """Before the schema: plain tags only, string keys only, no duplicate keys, no aliases,
    bounded depth. Iterative, so hostile nesting cannot exhaust the stack."""
    seen = set()
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            _fail(node, file, "", "YAML aliases (*name) are not allowed in a recipe; write the value out")
        seen.add(id(node))
        if node.tag not in _PLAIN_TAGS:
            _fail(
                node,
                file,
                "",
                f"unknown YAML tag {shown(node.tag)}: a recipe holds plain strings, numbers, lists and mappings",
            )
        if depth > MAX_DEPTH:
            _fail(node, file, "", f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, yaml.MappingNode):
            first: Dict[str, yaml.Node] = {}
            for k, v in node.value:
                if not isinstance(k, yaml.ScalarNode) or k.tag != "tag:yaml.org,2002:str":
                    _fail(k, file, "", "a mapping key must be a plain string")
                if k.value in first:
                    _fail(k, file, k.value, f"duplicate key (first at line {first[k.value].start_mark.line + 1})")
                first[k.value] = k
                stack.append((v, depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((v, depth + 1) for v in node.value)


def _scalar(kind: str, test: Callable[[Any], bool]) -> Validator:
    def check(node: yaml.Node, file: str, key: str) -> None:
        if not isinstance(node, yaml.ScalarNode) or not test(_value(node, file, key)):
            _fail(node, file, key, f"expected {kind}")

    return check


def _no_nul(node: yaml.Node, file: str, key: str) -> None:
    if "\0" in node.value:
        _fail(node, file, key, "contains a NUL character")


def _text(node: yaml.Node, file: str, key: str) -> None:
    """Free text (description, why): any non-empty string without NUL."""
    _scalar("a string", lambda v: isinstance(v, str) and v != "")(node, file, key)
    _no_nul(node, file, key)


def _str(node: yaml.Node, file: str, key: str) -> None:
    """A name or a word on a command line: one line, no control characters."""
    _text(node, file, key)
    if _CONTROL.search(node.value):
        _fail(node, file, key, f"contains a control character (newline, CR, NUL, ...): {shown(node.value)}")


_bool = _scalar("true or false", lambda v: isinstance(v, bool))
_str_or_null = _scalar("a string or null", lambda v: v is None or isinstance(v, str))
_positive_int = _scalar("a positive whole number", lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0)


def _placeholders(node: yaml.Node, file: str, key: str) -> None:
    for name in re.findall(r"\{(\w*)\}", node.value):
        if name not in PLACEHOLDERS:
            _fail(node, file, key, f"unknown placeholder {{{name}}} (known: {', '.join(_PATH_ROOTS)})")


def _placeholder_str(node: yaml.Node, file: str, key: str) -> None:
    """An activation value: any text but NUL (quoted when written), with known placeholders."""
    _text(node, file, key)
    _placeholders(node, file, key)


def _env_path(node: yaml.Node, file: str, key: str) -> None:
    """A path the steps write, link or copy: inside the env, written from {prefix} or {site_packages}."""
    _str(node, file, key)
    _placeholders(node, file, key)
    text = node.value
    root = next((r for r in _PATH_ROOTS if text == r or text.startswith(r + "/")), None)
    if root is None:
        _fail(
            node, file, key, f"must be inside the env: start with {{prefix}}/ or {{site_packages}}/, not {shown(text)}"
        )
    if ".." in text.split("/"):
        _fail(node, file, key, f"must stay inside the env: no '..' in {shown(text)}")


def _file_name(node: yaml.Node, file: str, key: str) -> None:
    """A link's name: one entry of its directory."""
    _str(node, file, key)
    if "/" in node.value or node.value in (".", ".."):
        _fail(node, file, key, f"must be a file name in the link's dir (no '/', not . or ..), not {shown(node.value)}")


def _link_target(node: yaml.Node, file: str, key: str) -> None:
    """What a link points to: relative to its directory, never out of it with .. or /."""
    _str(node, file, key)
    if node.value.startswith("/") or ".." in node.value.split("/"):
        _fail(node, file, key, f"must be relative to the link's dir, without '..': not {shown(node.value)}")


def _requirement(node: yaml.Node, file: str, key: str) -> None:
    _str(node, file, key)
    try:
        Requirement(node.value)
    except InvalidRequirement as exc:
        _fail(node, file, key, f"not a valid pip requirement: {shown(str(exc), 200)[1:-1]}")


def _specifier(node: yaml.Node, file: str, key: str) -> None:
    _str(node, file, key)
    try:
        SpecifierSet(node.value)
    except InvalidSpecifier:
        _fail(node, file, key, f"not a version specifier such as '==2.10.*' or '>=8.1,<9': {shown(node.value)}")


def _one_of(*choices: str) -> Validator:
    def check(node: yaml.Node, file: str, key: str) -> None:
        _str(node, file, key)
        if node.value not in choices:
            _fail(node, file, key, f"expected one of {', '.join(choices)}, got {shown(node.value)}")

    return check


def _list_of(item: Validator) -> Validator:
    def check(node: yaml.Node, file: str, key: str) -> None:
        if not isinstance(node, yaml.SequenceNode):
            _fail(node, file, key, "expected a list")
        for i, child in enumerate(node.value):
            item(child, file, f"{key}[{i}]")

    return check


def _mapping(fields: Dict[str, Validator], required: tuple = ()) -> Validator:
    def check(node: yaml.Node, file: str, key: str) -> None:
        if not isinstance(node, yaml.MappingNode):
            _fail(node, file, key, "expected a mapping")
        seen = set()
        for k, v in node.value:
            name = k.value
            path = f"{key}.{name}" if key else name
            if name not in fields:
                _fail(k, file, path, "unknown key (known: " + ", ".join(fields) + ")")
            seen.add(name)
            fields[name](v, file, path)
        for name in required:
            if name not in seen:
                _fail(node, file, f"{key}.{name}" if key else name, "required key is missing")

    return check


_ENV_VAR = _mapping(
    {"prepend": _list_of(_placeholder_str), "append": _list_of(_placeholder_str), "set": _placeholder_str}
)


def _env_var(node: yaml.Node, file: str, key: str) -> None:
    _ENV_VAR(node, file, key)
    if len(node.value) != 1:
        _fail(node, file, key, "give exactly one of prepend, append or set")


def _env_vars(node: yaml.Node, file: str, key: str) -> None:
    if not isinstance(node, yaml.MappingNode):
        _fail(node, file, key, "expected a mapping of variable names")
    for k, v in node.value:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k.value):
            _fail(k, file, f"{key}.{k.value}", "not a valid environment variable name (letters, digits and _)")
        _env_var(v, file, f"{key}.{k.value}")


SCHEMA = _mapping(
    {
        "name": _str,
        "description": _text,
        "env_name": _str,
        "sources": _list_of(_text),
        "conda": _mapping({"channels": _list_of(_str), "dependencies": _list_of(_str)}, ("dependencies",)),
        "pip": _list_of(
            _mapping(
                {
                    "name": _str,
                    "requirements": _list_of(_requirement),
                    "extra_index_urls": _list_of(_str),
                    "index_url": _str,
                    "find_links": _list_of(_str),
                    "no_index": _bool,
                    "optional": _bool,
                    "gpu": _bool,
                    "why": _text,
                },
                ("name", "requirements"),
            )
        ),
        "links": _list_of(
            _mapping({"dir": _env_path, "name": _file_name, "target": _link_target}, ("dir", "name", "target"))
        ),
        "activate": _env_vars,
        "copies": _list_of(_mapping({"from": _env_path, "to": _env_path}, ("from", "to"))),
        "kind": _one_of(*KINDS),
        "python": _scalar(
            "a Python version such as '3.9'", lambda v: isinstance(v, str) and re.fullmatch(r"3\.\d+", v) is not None
        ),
        "image": _str,
        "image_compressed_bytes": _positive_int,
        "accepted_conflicts": _list_of(
            _mapping({"package": _str, "requires": _str, "why": _text}, ("package", "requires", "why"))
        ),
        "expect": _mapping(
            {
                "python": _specifier,
                "tensorflow": _specifier,
                "cuda_runtime": _str_or_null,
                "cudnn": _specifier,
                "tensorrt": _specifier,
                "tensorrt_soname": _str_or_null,
                "e2e": _str_or_null,
                "gpu": _one_of(*GPU_MODES),
            }
        ),
    },
    ("name",),
)


_WHY_REQUIRED = {
    "image": "a kind: container recipe names its image (e.g. nvcr.io/nvidia/merlin/merlin-tensorflow:23.02)",
    "python": 'a kind: venv recipe names the Python of its venv (e.g. python: "3.9")',
}


def _check_kind(node: yaml.MappingNode, file: str) -> None:
    """Each kind has its own keys: a container names its image and builds nothing, a venv
    names its Python and has no conda part, a conda env has neither image nor `python`."""
    keys = {k.value: k for k, _ in node.value}
    kind_node = next((v for k, v in node.value if k.value == "kind"), None)
    kind = kind_node.value if kind_node is not None else "conda"
    for name in NOT_FOR_KIND[kind]:
        if name in keys:
            _fail(keys[name], file, name, f"not allowed in a kind: {kind} recipe")
    for name in REQUIRED_FOR_KIND[kind]:
        if name not in keys:
            _fail(node, file, name, _WHY_REQUIRED[name])


def _too_large(file: str) -> InputError:
    return InputError(f"larger than {MAX_RECIPE_BYTES:,} characters: a recipe is a few kilobytes of YAML", file)


def _compose(text: str, file: str) -> yaml.Node:
    if len(text) > MAX_RECIPE_BYTES:
        raise _too_large(file)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        node = yaml.compose(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"invalid YAML: {shown(problem, 200)[1:-1]}", file, mark.line + 1 if mark else None) from None
    except RecursionError:
        raise InputError(f"invalid YAML: nested more than {MAX_DEPTH} levels deep", file) from None
    if node is None:
        raise InputError("the recipe is empty", file)
    return node


def parse_recipe(text: str, file: str) -> Recipe:
    """Validate and build a recipe from YAML text; any problem is an InputError with its line."""
    node = _compose(text, file)
    _check_structure(node, file)
    SCHEMA(node, file, "")
    assert isinstance(node, yaml.MappingNode)  # SCHEMA said so
    _check_kind(node, file)
    data = _plain(node, file)
    conda = data.get("conda") or {}
    return Recipe(
        name=data["name"],
        path=file,
        description=data.get("description", ""),
        kind=data.get("kind", "conda"),
        image=data.get("image"),
        image_compressed_bytes=data.get("image_compressed_bytes"),
        accepted_conflicts=[AcceptedConflict(**c) for c in data.get("accepted_conflicts") or []],
        env_name=data.get("env_name"),
        venv_python=data.get("python"),
        channels=list(conda.get("channels", [])),
        conda_dependencies=list(conda.get("dependencies", [])),
        pip=[
            PipGroup(
                name=g["name"],
                requirements=list(g["requirements"]),
                extra_index_urls=list(g.get("extra_index_urls", [])),
                index_url=g.get("index_url"),
                find_links=list(g.get("find_links", [])),
                no_index=bool(g.get("no_index", False)),
                optional=bool(g.get("optional", False)),
                gpu=bool(g.get("gpu", False)),
                why=g.get("why", ""),
            )
            for g in data.get("pip") or []
        ],
        links=[Link(**x) for x in data.get("links") or []],
        activate=[EnvVar(name=k, **v) for k, v in (data.get("activate") or {}).items()],
        copies=[Copy(src=c["from"], dst=c["to"]) for c in data.get("copies") or []],
        expect=Expect(
            **{k: (str(v) if v is not None and k != "gpu" else v) for k, v in (data.get("expect") or {}).items()}
        ),
        sources=list(data.get("sources") or []),
    )


def recipe_option(recipe: Recipe) -> str:
    """` --recipe NAME` (or its file) for a command about this recipe; nothing for the default."""
    if recipe.name == DEFAULT_RECIPE:
        return ""
    builtin = Path(recipe.path).parent == RECIPES_DIR
    return f" --recipe {recipe.name if builtin else shlex.quote(recipe.path)}"


def fix_command(recipe: Recipe, step: str, force: bool = False) -> str:
    """The `merlin-doctor fix` line that runs one step for this recipe."""
    return f"merlin-doctor fix --only {step}" + (" --force" if force else "") + recipe_option(recipe)


def available_recipes() -> List[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yml"))


def resolve_recipe_path(name_or_file: Optional[str]) -> Path:
    """A recipe is named (`cpu`) or given as a path (`./my.yml`)."""
    spec = name_or_file or DEFAULT_RECIPE
    looks_like_path = "/" in spec or spec.endswith((".yml", ".yaml"))
    path = Path(spec) if looks_like_path else RECIPES_DIR / f"{spec}.yml"
    if "\0" in spec or not path.is_file():
        known = ", ".join(available_recipes())
        raise InputError(f"no recipe {shown(spec)} (a file path, or one of: {known})")
    return path


def load_recipe(name_or_file: Optional[str] = None) -> Recipe:
    path = resolve_recipe_path(name_or_file)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_RECIPE_BYTES * 4 + 1)  # UTF-8 takes at most 4 bytes a character
        if len(raw) > MAX_RECIPE_BYTES * 4:
            raise _too_large(str(path))
        text = raw.decode("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read recipe: {exc.strerror or exc}", str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read recipe: not UTF-8 text ({exc.reason} at byte {exc.start})", str(path)) from None
    return parse_recipe(text, str(path))


def load_buildable_recipe(name_or_file: Optional[str] = None) -> Recipe:
    """A recipe that setup/fix can build: a container recipe's stack ships in its image."""
    recipe = load_recipe(name_or_file)
    if recipe.is_container:
        raise InputError(
            f"recipe {recipe.name!r} is the {recipe.image} image: there is no env to build; "
            f"judge the host with `merlin-doctor check --host --recipe {recipe.name}` and start it with "
            f"`merlin-doctor container-cmd --recipe {recipe.name}`"
        )
    return recipe


def conda_environment(recipe: Recipe, name: Optional[str] = None) -> Dict[str, Any]:
    """The conda `environment.yml` equivalent of a recipe's conda and pip parts."""
    pip: List[str] = []
    for group in recipe.pip:
        pip += [f"--extra-index-url {u}" for u in group.extra_index_urls]
        pip += group.requirements
    deps: List[Any] = list(recipe.conda_dependencies)
    if pip:
        deps.append({"pip": pip})
    return {"name": name or recipe.env_name or recipe.name, "channels": list(recipe.channels), "dependencies": deps}
