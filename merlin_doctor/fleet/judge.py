"""Pure judgement of the fleet: verdicts per worker, configurations grouped by the facts that matter
(factpaths.config_signature), and the workers that differ from the majority."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

from merlin_doctor.factpaths import config_signature
from merlin_doctor.fleet.model import OK, Group, Node


def judge(nodes: List[Node], checks: List[Any], recipe: Any, options: Any) -> None:
    """Each answering node's verdicts; nodes that share facts share one judgement."""
    from merlin_doctor.facts import Facts
    from merlin_doctor.runner import run_checks

    judged: Dict[str, List[Any]] = {}
    for node in nodes:
        if node.status != OK or node.facts is None:
            continue
        key = node.probed_by or node.address
        if key not in judged:
            snapshot = Facts(node.facts.get("probes", {}), node.facts.get("meta"))
            judged[key] = run_checks(checks, snapshot, recipe, options)
        node.verdicts = judged[key]


def _label(index: int) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return letters[index] if index < len(letters) else f"G{index + 1}"


def group(nodes: List[Node]) -> List[Group]:
    """Configurations: nodes with equal signatures, largest first; the rest differ from the majority.

    A majority exists when one group is strictly the largest; its nodes are the norm, every
    other node is an outlier. With a tie there is no norm: differences are shown against A.
    """
    buckets: Dict[str, Group] = {}
    signatures: Dict[int, Tuple[Dict[str, Any], str]] = {}  # workers probed once share one facts dict
    for node in sorted(nodes, key=lambda n: n.address):
        if node.status != OK or node.facts is None:
            continue
        if id(node.facts) not in signatures:
            signature = config_signature(node.facts.get("probes", {}))
            signatures[id(node.facts)] = (signature, json.dumps(signature, sort_keys=True, default=str))
        signature, key = signatures[id(node.facts)]
        buckets.setdefault(key, Group("", signature, [])).members.append(node.address)
    groups = sorted(buckets.values(), key=lambda g: (-len(g.members), g.members[0]))
    for index, g in enumerate(groups):
        g.label = _label(index)
    if not groups:
        return groups
    norm = groups[0]
    norm.majority = len(groups) == 1 or len(norm.members) > len(groups[1].members)
    for g in groups[1:]:
        paths = list(norm.signature) + [p for p in g.signature if p not in norm.signature]
        g.differs = [
            {"path": p, "majority": norm.signature.get(p), "value": g.signature.get(p)}
            for p in paths
            if norm.signature.get(p) != g.signature.get(p)
        ]
    by_address = {n.address: n for n in nodes}
    for g in groups:
        for address in g.members:
            by_address[address].config = g.label
            by_address[address].outlier = norm.majority and not g.majority
    return groups
