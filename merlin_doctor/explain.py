"""Explain a log: name the known problems in it, root cause first, with the lines that prove them.

What each message means lives in `knowledge/signatures.yml`; this module only matches and
ranks. A log is read once, as bytes, in blocks: one combined keyword regex finds the few
lines worth a look (a log is mostly progress bars and info lines), and only those are
decoded, cleaned and tried against the full patterns. Memory stays flat whatever the size:
per signature it keeps hit counts and the first few evidence lines, nothing else.
"""

from __future__ import annotations

import codecs
import html
import io
import itertools
import re
import sys
from dataclasses import dataclass
from functools import cache
from typing import (
    Any,
    BinaryIO,
    Dict,
    FrozenSet,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
)

from merlin_doctor import knowledge
from merlin_doctor.errors import InputError
from merlin_doctor.render import SYMBOLS, safe_text
from merlin_doctor.verdict import Status, plural

SCHEMA_VERSION = 1
SEVERITIES = ("fatal", "error", "warning", "benign")
DEFAULT_PRIORITY = 50
BLOCK_SIZE = 1 << 20
MAX_LINE = 1 << 16  # a longer run without a newline is cut: memory stays flat on any input
EVIDENCE_LIMIT = 5  # evidence lines kept per pattern and shown per match
EXCERPT_LIMIT = 300  # characters of an evidence line shown
HEAD_SIZE = 4096  # bytes read before judging the encoding (UTF-8, UTF-16 or UTF-32)

_REQUIRED = {
    "id": str,
    "title": str,
    "severity": str,
    "keywords": list,
    "patterns": list,
    "cause": str,
    "fix": str,
    "source": str,
}
_OPTIONAL = {
    "priority": int,
    "none": list,
    "explains": list,
    "check": str,
    "step": str,
    "examples": list,
    "weak": list,
    "confidence": str,
}
CONFIDENCES = ("high", "medium", "low")  # low: only weak evidence (traceback frames, symptoms) points to it
_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_QUOTE = re.compile(r"^(?:>[ \t]*)+")  # markdown quoting (and `>>> ` prompts)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # escape sequences start with one (ESC)
_ESCAPE_AS_TEXT = re.compile(r"\\(?:u001b|x1b|033)\[[0-9;?]*[ -/]*[@-~]")  # colours in notebook JSON
_LOG_PREFIX = re.compile(
    r"^(?:\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?:?\s+"  # TF / docker timestamp
    r"|[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+\s+"  # absl / glog header
    r"|[IWEF]\s+(?=\S+:\d+\])"  # TF level letter
    r"|\S+\.(?:cc|h|cpp|py):\d+\]\s*"  # source location
    r"|(?:DEBUG|INFO|WARNING|ERROR|CRITICAL):[\w.]+:\s*"  # Python logging
    r"|Out\[\d+\]:\s*"  # Jupyter output prompt
    r"|E\s{2,}"  # pytest failure lines
    r"|[\w.-]{1,63}\s*\|\s+"  # docker compose service
    r"|\[\d{4}-\d\d-\d\d[ ,T][^\]]{0,40}\]\s*(?:\{[^}]{0,80}\}\s*)?(?:[A-Z]+\s+-\s+)?"  # Airflow
    r"|\[\d{4} \d\d:\d\d:\d\d @[^\]]{0,80}\]\s*"  # tensorpack logger
    r"|-\s+[\w.]+\s+-\s+(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+-\s+"  # logging after a timestamp
    r"|\(\w+ pid=\d+\)\s*"  # vLLM / Ray process tag
    r"|##\[\w+\]\s*"  # GitHub Actions
    r"|[:|]\s+"  # a cut-off prefix
    r")+"
)
_SPACE_RUN = re.compile(rb"[ \t]+")
_SEVERITY_STATUS = {"fatal": Status.FAIL, "error": Status.FAIL, "warning": Status.WARN, "benign": Status.SKIP}


class SignatureError(ValueError):
    """The signatures file is malformed; the message names the file and the entry."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Evidence:
    line: int  # 1-based
    text: str  # cleaned: no escape sequences or control characters

    def to_dict(self) -> Dict[str, Any]:
        return {"line": self.line, "text": self.text}


@dataclass(frozen=True)
class Match:
    id: str
    title: str
    severity: str
    cause: str
    fix: str
    check: Optional[str]
    step: Optional[str]
    source: str
    evidence: List[Evidence]
    evidence_count: int  # lines that matched, of which `evidence` shows the first few
    confidence: str = "high"  # one of CONFIDENCES: "low" is a guess from weak evidence only

    def to_dict(self) -> Dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "cause": self.cause,
            "fix": self.fix,
            "check": self.check,
            "step": self.step,
            "source": self.source,
            "evidence": [e.to_dict() for e in self.evidence],
            "evidence_count": self.evidence_count,
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class ExplainResult:
    matches: List[Match]  # best first: root causes, then what they explain, benign last
    lines: int  # lines read

    @property
    def failures(self) -> List[Match]:
        return [m for m in self.matches if m.severity != "benign"]

    @property
    def benign(self) -> List[Match]:
        return [m for m in self.matches if m.severity == "benign"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def to_dict(self) -> Dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "matches": [m.to_dict() for m in self.matches]}


# --------------------------------------------------------------------------- knowledge


@dataclass(frozen=True)
class Signature:
    id: str
    title: str
    severity: str
    priority: int
    cause: str
    fix: str
    check: Optional[str]
    step: Optional[str]
    source: str
    keywords: Tuple[bytes, ...]
    regexes: Tuple[re.Pattern[str], ...]  # every distinct regex the entry uses
    groups: Tuple[Tuple[Tuple[int, ...], Tuple[int, ...], str], ...]  # per alternative: (all, none, confidence)
    weak: Tuple[int, ...]  # regexes that only suggest the entry
    vetoes: Tuple[int, ...]
    explains: Tuple[str, ...]
    examples: Tuple[str, ...]


@dataclass(frozen=True)
class Knowledge:
    signatures: Tuple[Signature, ...]
    prefilter: re.Pattern[bytes]  # finds keywords: the lines worth a look
    owners: Mapping[bytes, Tuple[int, ...]]  # keyword found -> signatures to try
    explained_by: Mapping[str, FrozenSet[str]]  # id -> ids that explain it, transitively


@cache
def load_knowledge() -> Knowledge:
    """The packaged signatures, compiled once per process."""
    return compile_knowledge(knowledge.load("signatures"), str(knowledge.KNOWLEDGE_DIR / "signatures.yml"))


def compile_knowledge(data: Any, origin: str) -> Knowledge:
    """Validate and compile a parsed signatures document; SignatureError names `origin` and the entry."""
    entries = data.get("signatures") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SignatureError(f"{origin}: expected a non-empty 'signatures' list")
    signatures = tuple(_signature(entry, f"{origin}: signature #{n}", origin) for n, entry in enumerate(entries, 1))
    ids = [s.id for s in signatures]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate:
        raise SignatureError(f"{origin}: signature {duplicate!r} is defined twice")
    return Knowledge(
        signatures, re.compile(_trie_regex(_trie(signatures))), _owners(signatures), _explained_by(signatures, origin)
    )


def _signature(entry: Any, where: str, origin: str) -> Signature:
    if not isinstance(entry, dict):
        raise SignatureError(f"{where}: expected a mapping")
    if isinstance(entry.get("id"), str):
        where = f"{origin}: signature {entry['id']!r}"
    _check_fields(entry, where)
    if not _ID.match(entry["id"]):
        raise SignatureError(f"{where}: id must be lowercase words joined by '-'")
    if entry["severity"] not in SEVERITIES:
        raise SignatureError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
    if entry["severity"] == "benign" and entry.get("explains"):
        raise SignatureError(f"{where}: a benign signature cannot explain others")
    _check_confidence(entry, where)
    keywords = _strings(entry, "keywords", where)
    table = _RegexTable(where)
    plain = [p for p in entry["patterns"] if isinstance(p, str)]
    confidence = entry.get("confidence", "high")
    groups = tuple(table.group(p, confidence) for p in entry["patterns"] if not isinstance(p, str))
    if plain:  # one search per line for all the plain regexes
        groups = (((table.alternation(plain),), (), confidence),) + groups
    vetoes = table.indexes(_strings(entry, "none", where))
    weak = table.indexes(_strings(entry, "weak", where))
    return Signature(
        id=entry["id"],
        title=entry["title"],
        severity=entry["severity"],
        priority=entry.get("priority", DEFAULT_PRIORITY),
        cause=entry["cause"].strip(),
        fix=entry["fix"].strip(),
        check=entry.get("check"),
        step=entry.get("step"),
        source=entry["source"],
        keywords=tuple(k.encode("utf-8") for k in keywords),
        regexes=tuple(table.regexes),
        groups=groups,
        weak=weak,
        vetoes=vetoes,
        explains=tuple(_strings(entry, "explains", where)),
        examples=tuple(_strings(entry, "examples", where)),
    )


def _check_confidence(entry: Dict[str, Any], where: str) -> None:
    """An entry or pattern says "high" (the default) or "medium"; "low" is for weak evidence only."""
    if entry.get("confidence", "high") not in CONFIDENCES[:2]:
        raise SignatureError(f"{where}: confidence must be one of {', '.join(CONFIDENCES[:2])}")


def _check_fields(entry: Dict[str, Any], where: str) -> None:
    for key, kind in {**_REQUIRED, **_OPTIONAL}.items():
        if key in _REQUIRED and key not in entry:
            raise SignatureError(f"{where}: missing '{key}'")
        if key in entry and (not isinstance(entry[key], kind) or isinstance(entry[key], bool)):
            raise SignatureError(f"{where}: '{key}' must be a {kind.__name__}")
        if key in entry and kind in (str, list) and not entry[key]:
            raise SignatureError(f"{where}: '{key}' is empty")
    unknown = sorted(set(entry) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise SignatureError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _strings(entry: Dict[str, Any], key: str, where: str) -> List[str]:
    values = entry.get(key, [])
    if not all(isinstance(v, str) and v for v in values):
        raise SignatureError(f"{where}: '{key}' must hold non-empty strings")
    return values


class _RegexTable:
    """Compiles an entry's regexes once each and hands out their indexes."""

    def __init__(self, where: str):
        self.where = where
        self.regexes: List[re.Pattern[str]] = []
        self._index: Dict[str, int] = {}

    def indexes(self, sources: Iterable[str]) -> Tuple[int, ...]:
        return tuple(self._add(s) for s in sources)

    def alternation(self, sources: Sequence[str]) -> int:
        for source in sources:  # each on its own first, so an error names the regex at fault
            self._compile(source)
        return self._add("|".join(f"(?:{s})" for s in sources))

    def group(self, pattern: Any, confidence: str) -> Tuple[Tuple[int, ...], Tuple[int, ...], str]:
        if not isinstance(pattern, dict) or set(pattern) - {"all", "none", "confidence"} or not pattern.get("all"):
            raise SignatureError(
                f"{self.where}: a pattern is a regex or a mapping with 'all' (and 'none', 'confidence')"
            )
        _check_confidence(pattern, self.where)
        return (
            self.indexes(_strings(pattern, "all", self.where)),
            self.indexes(_strings(pattern, "none", self.where)),
            pattern.get("confidence", confidence),
        )

    def _add(self, source: str) -> int:
        if source not in self._index:
            self._index[source] = len(self.regexes)
            self.regexes.append(self._compile(source))
        return self._index[source]

    def _compile(self, source: str) -> re.Pattern[str]:
        try:  # retyped messages change case; _views folds the spacing
            return re.compile(source, re.IGNORECASE)
        except re.error as exc:
            raise SignatureError(f"{self.where}: bad regex {source!r}: {exc}") from None


def _trie(signatures: Sequence[Signature]) -> Dict[int, Any]:
    """Every keyword as a byte trie; -1 marks where one ends."""
    trie: Dict[int, Any] = {}
    for keyword in {k for s in signatures for k in s.keywords}:
        node = trie
        for byte in keyword:
            node = node.setdefault(byte, {})
        node[-1] = {}
    return trie


def _trie_regex(node: Dict[int, Any]) -> bytes:
    """The trie as one regex: the scan's only per-byte cost, so it must stay factored.

    A space in a keyword stands for any run of spaces and tabs (retyped or re-indented text).
    """
    if -1 in node:  # a keyword ends here: one that merely extends it is found through it
        return b""
    branches = [
        (rb"[ \t]+" if b == 32 else re.escape(bytes([b]))) + _trie_regex(child) for b, child in sorted(node.items())
    ]
    return branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"


def _owners(signatures: Sequence[Signature]) -> Dict[bytes, Tuple[int, ...]]:
    """For each keyword the trie regex can report (the shortest of those sharing a prefix), who to try."""
    keywords = {k for s in signatures for k in s.keywords}
    owners: Dict[bytes, Set[int]] = {}
    for i, sig in enumerate(signatures):
        for keyword in sig.keywords:
            reported = min((k for k in keywords if keyword.startswith(k)), key=len)
            owners.setdefault(reported, set()).add(i)
    return {k: tuple(sorted(v)) for k, v in owners.items()}


def _explained_by(signatures: Sequence[Signature], origin: str) -> Dict[str, FrozenSet[str]]:
    """Invert `explains` and close it transitively; a cycle would make ranking meaningless."""
    explains = {s.id: set(s.explains) for s in signatures}
    for sig in signatures:
        unknown = set(sig.explains) - set(explains)
        if unknown:
            raise SignatureError(f"{origin}: signature {sig.id!r} explains unknown id(s) {', '.join(sorted(unknown))}")
    reach: Dict[str, Set[str]] = {}

    def descendants(sid: str, path: Tuple[str, ...]) -> Set[str]:
        if sid in path:
            raise SignatureError(f"{origin}: 'explains' forms a cycle: {' -> '.join(path + (sid,))}")
        if sid not in reach:
            reach[sid] = set(explains[sid]).union(*(descendants(c, path + (sid,)) for c in explains[sid]))
        return reach[sid]

    inverse: Dict[str, Set[str]] = {}
    for sid in explains:
        for child in descendants(sid, ()):
            inverse.setdefault(child, set()).add(sid)
    return {k: frozenset(v) for k, v in inverse.items()}


# --------------------------------------------------------------------------- scanning


class _State:
    """What one signature saw: per regex the lines it matched (count, first few), and which regexes co-matched."""

    __slots__ = ("hits", "evidence", "combos")

    def __init__(self, regex_count: int):
        self.hits = [0] * regex_count
        self.evidence: List[List[Evidence]] = [[] for _ in range(regex_count)]
        self.combos: Dict[FrozenSet[int], int] = {}  # set of regexes one line matched -> lines

    def feed(self, sig: Signature, views: Sequence[Tuple[str, str, int]], line: int) -> None:
        matched: Set[int] = set()
        for shown, body, offset in views:
            for j, regex in enumerate(sig.regexes):
                found = regex.search(body) if j not in matched else None
                if found:
                    matched.add(j)
                    self.hits[j] += 1
                    if len(self.evidence[j]) < EVIDENCE_LIMIT:
                        self.evidence[j].append(Evidence(line, _excerpt(shown, offset + found.start())))
        if matched:
            key = frozenset(matched)
            self.combos[key] = self.combos.get(key, 0) + 1

    def match(self, sig: Signature) -> Optional[Match]:
        """The entry's match: through a pattern (its confidence), else through weak evidence ("low")."""
        if any(self.hits[j] for j in sig.vetoes):
            return None
        held = [
            (all_, confidence)
            for all_, none, confidence in sig.groups
            if all(self.hits[j] for j in all_) and not any(self.hits[j] for j in none)
        ]
        used = {j for all_, _ in held for j in all_}
        confidence = min((c for _, c in held), key=CONFIDENCES.index, default="low")
        if not used:
            used = {j for j in sig.weak if self.hits[j]}
        if not used:
            return None
        by_line = {ev.line: ev for j in sorted(used, reverse=True) for ev in self.evidence[j]}
        evidence = [by_line[n] for n in sorted(by_line)][:EVIDENCE_LIMIT]
        count = sum(n for combo, n in self.combos.items() if combo & used)
        return Match(
            sig.id,
            sig.title,
            sig.severity,
            sig.cause,
            sig.fix,
            sig.check,
            sig.step,
            sig.source,
            evidence,
            count,
            confidence,
        )


class _Scanner:
    def __init__(self, kb: Knowledge):
        self.kb = kb
        self.states = [_State(len(s.regexes)) for s in kb.signatures]
        self.newlines = 0
        self.open_line = False  # the last block ended inside a line

    def scan(self, buf: bytes, end: int) -> None:
        """Scan buf[:end]; it starts at a line start and ends at a newline or at a forced cut."""
        search, pos, counted = self.kb.prefilter.search, 0, 0
        while True:
            found = search(buf, pos, end)
            if found is None:
                break
            start = buf.rfind(b"\n", pos, found.start()) + 1 or pos
            stop = buf.find(b"\n", found.end(), end)
            stop = end if stop < 0 else stop
            self.newlines += buf.count(b"\n", counted, start)
            counted = start
            self._line(buf[start:stop], self.newlines + 1)
            pos = stop + 1
        self.newlines += buf.count(b"\n", counted, end)
        self.open_line = end > 0 and buf[end - 1 : end] != b"\n"

    def _line(self, raw: bytes, line: int) -> None:
        owners = {i for keyword in _keywords_in(raw, self.kb.prefilter) for i in self.kb.owners[keyword]}
        views = list(_views(raw))
        for i in owners:
            self.states[i].feed(self.kb.signatures[i], views, line)

    def result(self) -> ExplainResult:
        sigs = self.kb.signatures
        found = [m for m in (state.match(sig) for sig, state in zip(sigs, self.states)) if m]
        return ExplainResult(_rank(found, self.kb), self.newlines + int(self.open_line))


def _keywords_in(raw: bytes, prefilter: re.Pattern[bytes]) -> Set[bytes]:
    """Every keyword in a line (its spacing folded), overlapping ones included (each start position is tried)."""
    found: Set[bytes] = set()
    hit = prefilter.search(raw)
    while hit:
        keyword = hit.group()
        found.add(_SPACE_RUN.sub(b" ", keyword) if b"  " in keyword or b"\t" in keyword else keyword)
        hit = prefilter.search(raw, hit.start() + 1)
    return found


def _views(raw: bytes) -> Iterator[Tuple[str, str, int]]:
    """Each carriage-return-separated piece of a line: (shown text, text to match, offset of one in the other).

    Shown text has escape sequences (also those written out as text, as in a notebook's JSON),
    control characters, HTML entities and markdown quoting removed; the matched text also
    loses log prefixes (TensorFlow/absl, logging, pytest, docker compose, Airflow ...), so
    anchored patterns work, and has runs of spaces folded to one (regexes ignore case).
    """
    for piece in raw.decode("utf-8", "replace").split("\r"):
        shown = (safe_text(piece) if _CONTROL.search(piece) else piece).strip()
        if "\\" in shown:
            shown = _ESCAPE_AS_TEXT.sub("", shown)
        if "&" in shown:
            shown = safe_text(html.unescape(shown))
        if shown.startswith(">"):
            shown = _QUOTE.sub("", shown, count=1)
        if shown:
            prefix = _LOG_PREFIX.match(shown)
            offset = prefix.end() if prefix else 0
            body = shown[offset:]
            yield shown, " ".join(body.split()) if "  " in body or "\t" in body else body, offset


def _excerpt(text: str, at: int) -> str:
    if len(text) <= EXCERPT_LIMIT:
        return text
    start = max(0, min(at - 60, len(text) - EXCERPT_LIMIT))
    cut = text[start : start + EXCERPT_LIMIT]
    return ("…" if start else "") + cut + ("…" if start + EXCERPT_LIMIT < len(text) else "")


def _rank(matches: List[Match], kb: Knowledge) -> List[Match]:
    """Root causes first, each followed by what it explains; benign last.

    Roots are ordered by severity, priority, then first evidence line, weak guesses last; a
    match explained by several others sits under the deepest chain (longest path through the
    `explains` graph). Only a match at least as confident as another can explain it.
    """
    failing = [m for m in matches if m.severity != "benign"]
    rank = {m.id: CONFIDENCES.index(m.confidence) for m in failing}
    priority = {s.id: s.priority for s in kb.signatures}
    depth: Dict[str, int] = {}

    def depth_of(mid: str) -> int:
        if mid not in depth:
            parents = {p for p in kb.explained_by.get(mid, frozenset()) if rank.get(p, 99) <= rank[mid]}
            depth[mid] = 1 + max(map(depth_of, parents)) if parents else 0
        return depth[mid]

    def key(m: Match) -> Tuple[bool, int, int, int, str]:
        return (m.confidence == "low", SEVERITIES.index(m.severity), -priority[m.id], m.evidence[0].line, m.id)

    ranked: List[Match] = []

    def place(parent: Match) -> None:
        ranked.append(parent)
        children = [
            m
            for m in failing
            if depth_of(m.id) == depth_of(parent.id) + 1
            and rank[parent.id] <= rank[m.id]
            and parent.id in kb.explained_by.get(m.id, frozenset())
            and m not in ranked
        ]
        for child in sorted(children, key=key):
            if child not in ranked:
                place(child)

    for root in sorted((m for m in failing if depth_of(m.id) == 0), key=key):
        place(root)
    return ranked + sorted((m for m in matches if m.severity == "benign"), key=key)


# --------------------------------------------------------------------------- reading


def _blocks(stream: BinaryIO) -> Iterator[bytes]:
    """The stream's bytes in blocks, transcoded to UTF-8 when it is UTF-16 (PowerShell's `>`) or UTF-32."""
    reads = iter(lambda: stream.read(BLOCK_SIZE) or b"", b"")
    first = b"".join(itertools.takewhile(bool, _head_reads(reads)))
    decoder = _wide_decoder(first)
    if decoder is None:
        yield from itertools.chain([first], reads)
        return
    for block in itertools.chain([first], reads):
        yield decoder.decode(block).encode("utf-8", "replace")
    yield decoder.decode(b"", final=True).encode("utf-8", "replace")


def _head_reads(reads: Iterator[bytes]) -> Iterator[bytes]:
    """Reads until there is enough to judge the encoding (a pipe may return a few bytes at a time)."""
    size = 0
    for block in reads:
        yield block
        size += len(block)
        if size >= HEAD_SIZE:
            return


def _wide_decoder(head: bytes) -> Optional[codecs.IncrementalDecoder]:
    """A decoder when the log is UTF-32 or UTF-16 (judged from a BOM or the NUL bytes of mostly-ASCII text)."""
    return _utf32_decoder(head) or _utf16_decoder(head)


def _utf32_decoder(head: bytes) -> Optional[codecs.IncrementalDecoder]:
    """A decoder when the log is UTF-32: a BOM, or (mostly-ASCII text) a NUL high byte pair in every code unit."""
    if head[:4] in (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE):
        return codecs.getincrementaldecoder("utf-32")("replace")
    units = min(len(head), HEAD_SIZE) // 4
    if units < 16:
        return None
    zeros = [head[i : units * 4 : 4].count(0) for i in range(4)]
    if zeros[3] == units and zeros[2] > 0.9 * units and zeros[0] < 0.5 * units:
        return codecs.getincrementaldecoder("utf-32-le")("replace")
    if zeros[0] == units and zeros[1] > 0.9 * units and zeros[3] < 0.5 * units:
        return codecs.getincrementaldecoder("utf-32-be")("replace")
    return None


def _utf16_decoder(head: bytes) -> Optional[codecs.IncrementalDecoder]:
    """A decoder when the log is UTF-16 (mostly ASCII, so every other byte is NUL), else None."""
    bom = head[:2] if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else b""
    sample = head[len(bom) : len(bom) + 4096]
    half = len(sample) // 2
    zeros_odd, zeros_even = sample[1::2].count(0), sample[0::2].count(0)
    if bom == codecs.BOM_UTF16_LE and zeros_odd > 0.3 * half or bom == codecs.BOM_UTF16_BE and zeros_even > 0.3 * half:
        return codecs.getincrementaldecoder("utf-16")("replace")
    if not bom and half >= 32 and zeros_odd > 0.4 * half and not zeros_even:
        return codecs.getincrementaldecoder("utf-16-le")("replace")
    return None


def _scan_blocks(blocks: Iterable[bytes], kb: Knowledge) -> ExplainResult:
    scanner = _Scanner(kb)
    carry = b""
    for block in blocks:
        buf = carry + block if carry else block
        cut = buf.rfind(b"\n") + 1
        if not cut and len(buf) < MAX_LINE:
            carry = buf
            continue
        cut = cut or len(buf)
        scanner.scan(buf, cut)
        carry = buf[cut:]
    if carry:
        scanner.scan(carry, len(carry))
    return scanner.result()


def explain_stream(stream: BinaryIO, kb: Optional[Knowledge] = None) -> ExplainResult:
    """Explain a log read from a binary stream, block by block (any size, any bytes).

    `kb` replaces the packaged signatures (see compile_knowledge), e.g. to try a new entry.
    """
    return _scan_blocks(_blocks(stream), kb or load_knowledge())


def explain_text(text: str) -> ExplainResult:
    return explain_stream(io.BytesIO(text.encode("utf-8", "replace")))


def explain_lines(lines: Iterable[str]) -> ExplainResult:
    """Explain log lines already in memory (e.g. TensorFlow's output captured by a probe)."""

    def blocks() -> Iterator[bytes]:
        pending: List[str] = []
        size = 0
        for line in lines:
            pending.append(line[:-1] if line.endswith("\n") else line)
            size += len(line)
            if size >= BLOCK_SIZE:
                yield ("\n".join(pending) + "\n").encode("utf-8", "replace")
                pending, size = [], 0
        if pending:
            yield ("\n".join(pending) + "\n").encode("utf-8", "replace")

    return _scan_blocks(blocks(), load_knowledge())


def explain_file(path: str) -> ExplainResult:
    """Explain a file, or standard input for "-"; an unreadable input is an InputError (exit 2)."""
    try:
        if path == "-":
            return explain_stream(sys.stdin.buffer)
        with open(path, "rb") as handle:
            return explain_stream(handle)
    except OSError as exc:
        raise InputError(f"cannot read the log: {exc.strerror or exc}", "<stdin>" if path == "-" else path) from None


# --------------------------------------------------------------------------- human text


def format_text(result: ExplainResult, show_all: bool = False, symbols: Mapping[Status, str] = SYMBOLS) -> List[str]:
    """The human report: each problem with cause, fix and evidence; benign ones counted, listed with show_all."""
    failures, benign = result.failures, result.benign
    read = plural(result.lines, "line")
    if failures:
        out = [f"{plural(len(failures), 'problem')} recognised in {read}, the likely root cause first:", ""]
    elif benign:
        out = [f"Nothing but harmless messages in {read}.", ""]
    else:
        return [f"No known problem recognised in {read}."]
    for match in failures + (benign if show_all else []):
        out += _format_match(match, symbols)
    if benign and not show_all:
        ids = ", ".join(m.id for m in benign)
        out.append(f"{plural(len(benign), 'kind')} of harmless message hidden ({ids}); --all shows them.")
    return out


_CONFIDENCE_NOTE = {
    "medium": "medium: the message is a symptom that more than one cause produces",
    "low": "low, a weak guess: no message of this cause is in the log, only indirect signs "
    "(the failing layer in a traceback, a symptom); confirm it before applying the fix",
}


def _format_match(match: Match, symbols: Mapping[Status, str]) -> List[str]:
    mark = symbols[_SEVERITY_STATUS[match.severity]]
    guess = ", weak guess" if match.confidence == "low" else ""
    lines = [
        f"[{mark}] {match.title}  ({match.id}, {match.severity}{guess})",
        f"    cause: {match.cause}",
        f"    fix:   {match.fix}",
    ]
    if match.confidence in _CONFIDENCE_NOTE:
        lines.append(f"    confidence: {_CONFIDENCE_NOTE[match.confidence]}")
    links = [f"doctor {kind}: {value}" for kind, value in (("check", match.check), ("step", match.step)) if value]
    if links:
        lines.append(f"           ({'; '.join(links)})")
    lines.append("    evidence:")
    lines += [f"      {e.line:>6}: {e.text}" for e in match.evidence]
    more = match.evidence_count - len(match.evidence)
    if more > 0:
        lines.append(f"              … and {plural(more, 'more line')}")
    lines += [f"    source: {match.source}", ""]
    return lines
