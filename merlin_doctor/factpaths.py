"""Facts as paths: `nvml.driver_version`, `cuda_libs.libraries[libcudnn.so.8].version`.

Baselines, fleet grouping and the report's machine table all ask the same questions of any
probe's facts, present or future: which leaves describe the configuration (not timings,
logs or run-time measurements), and what are the few values a person reads first. The
answers are data, `knowledge/config_facts.yml`; this module applies them. Pure.
"""

from __future__ import annotations

import collections
import functools
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from merlin_doctor import knowledge


def rules() -> Dict[str, Any]:
    return knowledge.load("config_facts")


@functools.cache
def _glob(pattern: str) -> re.Pattern[str]:
    """`*` matches anything, except inside [...] where it stays within the item's name."""
    out, inside = [], False
    for char in pattern:
        if char == "*":
            out.append(r"[^\]]*" if inside else ".*")
        else:
            inside = (inside or char == "[") and char != "]"
            out.append(re.escape(char))
    return re.compile("".join(out), re.IGNORECASE)


def matches(path: str, patterns: Sequence[str]) -> bool:
    return any(_glob(p).fullmatch(path) for p in patterns)


def join(path: str, key: str) -> str:
    if not path:
        return key
    return path + key if key.startswith("[") else f"{path}.{key}"


def _item_key(items: List[Dict[str, Any]], keys: Sequence[str]) -> Optional[str]:
    """The field that names each item of a list of dicts: present in all, scalar, all different."""
    for key in keys:
        values = [item.get(key) for item in items]
        if all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values) and len(set(values)) == len(
            values
        ):
            return key
    return None


def keyed(value: Any, keys: Optional[Sequence[str]] = None) -> Any:
    """Lists of dicts as dicts keyed `[name]`, recursively, so an insertion does not shift every path."""
    keys = rules()["item_keys"] if keys is None else keys
    if isinstance(value, dict):
        return {str(k): keyed(v, keys) for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
        name = _item_key(value, keys)
        return {f"[{item[name] if name else pos}]": keyed(item, keys) for pos, item in enumerate(value)}
    return value


def pruned(value: Any, path: str, ignore: Sequence[str]) -> Any:
    """A keyed value without the subtrees the ignore patterns name."""
    if isinstance(value, dict):
        return {k: pruned(v, join(path, k), ignore) for k, v in value.items() if not matches(join(path, k), ignore)}
    return value


def flatten(probes: Dict[str, Any], ignore: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Every leaf of the probes' facts by path, noise left out (lists of scalars are one leaf)."""
    ignore = rules()["ignore"] if ignore is None else ignore
    leaves: Dict[str, Any] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                sub = join(path, k)
                if not matches(sub, ignore):
                    walk(v, sub)
        else:
            leaves[path] = value

    walk(keyed(probes), "")
    return leaves


def config_signature(probes: Dict[str, Any]) -> Dict[str, Any]:
    """The leaves that make two machines' configurations the same or different."""
    table = rules()
    packages = {f"packages.distributions.{name}.version" for name in table["key_packages"]}
    return {
        path: value
        for path, value in flatten(probes).items()
        if path in packages or (matches(path, table["group_by"]) and not matches(path, table["group_exclude"]))
    }


def show(value: Any) -> str:
    """A leaf as one short line of text; repeated list items as `2× Tesla T4`."""
    if isinstance(value, list):
        counts = collections.Counter(show(v) for v in value)
        return ", ".join(f"{n}× {text}" if n > 1 else text for text, n in counts.items())
    return "-" if value is None else str(value)


def headline(probes: Dict[str, Any]) -> List[Tuple[str, str]]:
    """(label, value) for the facts a person reads first, those the snapshot has."""
    leaves = flatten(probes)
    rows = []
    for row in rules()["headline"]:
        found = [v for path, v in leaves.items() if matches(path, [row["path"]]) and v is not None]
        if found:
            rows.append((row["label"], show(found if len(found) > 1 else found[0])))
    return rows
