"""Redact a facts snapshot (or any JSON document) so that it can be shared. Pure: no I/O.

User, host and home directory, IP and MAC addresses, GPU UUIDs and serials become stable
placeholders (`<user>`, `<host>`, `<home>`, `<ip-1>`, `<gpu-uuid-1>`, ...): one value gets one
placeholder everywhere in a document, so checks that compare two facts (the env's prefix
against sys.prefix, say) judge the redacted copy exactly as they judged the original.
Environment maps keep only allowlisted names, and whatever looks like a secret is dropped.
Every string is walked, keys included, so facts of probes added later are covered too.
The policy (allowlist, secret shapes) is data: `knowledge/redaction.yml`.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from merlin_doctor import knowledge
from merlin_doctor.verdict import plural

SECRET = "<secret>"
#: Identity kinds: the first distinct value is `<user>`, the next `<user-2>`; other kinds count from 1.
IDENTITY_KINDS = ("home", "host", "user")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"<>]+@")
#: Anaconda's token channels: https://conda.anaconda.org/t/<TOKEN>/conda-forge (conda-meta `channel`, `url`).
_CHANNEL_TOKEN = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s'\"<>]*?/t/)(?!<secret>/)[^/\s'\"<>]+")
_ASSIGNMENT = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>[\"']?\s*(?<![<>!~=])[=:](?![=:/])\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s\"'&;,]+)"
)  # NAME=value, NAME: value, "NAME": "value"
_UUID = re.compile(r"(?i)\b(?:(?P<gpu>GPU|MIG)-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_MAC = re.compile(r"(?<![\w:-])[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}(?![\w:-])")
_IPV6 = re.compile(r"(?<![\w:.-])(?=[0-9A-Fa-f]*:[0-9A-Fa-f]*:)[0-9A-Fa-f:]{2,39}(?![\w:.-])")
_PLACEHOLDER = re.compile(r"(<[a-z]+(?:-[a-z]+)*(?:-\d+)?>)")
_IPV4 = re.compile(r"(?<![\w.=<>~!+-])(?:\d{1,3}\.){3}\d{1,3}(?![\w.+-])")


@dataclass(frozen=True)
class Identity:
    """Who and where: values to redact, from this machine (probes.identity) and from the snapshot."""

    users: Tuple[str, ...] = ()
    hosts: Tuple[str, ...] = ()
    homes: Tuple[str, ...] = ()

    def merged(self, other: Identity) -> Identity:
        join = lambda a, b: tuple(dict.fromkeys(a + b))  # noqa: E731  (ordered, no duplicates)
        return Identity(join(self.users, other.users), join(self.hosts, other.hosts), join(self.homes, other.homes))


@dataclass
class Redaction:
    """The redacted document and what was taken out of it."""

    data: Any
    replaced: Dict[str, int] = field(default_factory=dict)  # kind -> distinct values replaced
    secrets: int = 0
    env_dropped: int = 0

    def summary(self) -> Dict[str, Any]:
        return {"replaced": dict(self.replaced), "secrets": self.secrets, "env_dropped": self.env_dropped}

    def reminder(self) -> str:
        """One line for the user: what the shared file no longer holds."""
        labels = {
            "ip": "IP address",
            "mac": "MAC address",
            "gpu-uuid": "GPU UUID",
            "uuid": "UUID",
            "serial": "serial number",
        }
        parts = ["user name, host name and home directory (<user>, <host>, <home>)"]
        parts += [plural(self.replaced[k], labels[k]) for k in labels if self.replaced.get(k)]
        if self.secrets:
            parts.append(plural(self.secrets, "secret"))
        line = "redacted: " + ", ".join(parts)
        if self.env_dropped:
            line += f"; {plural(self.env_dropped, 'environment variable')} not on the allowlist left out"
        return line


def mask_credentials(text: str) -> str:
    """URL credentials (`user:token@`) and channel tokens (`/t/TOKEN/`) masked: for logs and plans,
    which show the commands run (the commands themselves keep them)."""
    return _CHANNEL_TOKEN.sub(r"\1<secret>", _URL_CREDENTIALS.sub(r"\1<credentials>@", text))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _home_pattern(homes: Iterable[str]) -> Optional[re.Pattern[str]]:
    values = sorted({h.rstrip("/") for h in homes if len(h.rstrip("/")) > 1}, key=len, reverse=True)
    if not values:
        return None
    return re.compile(rf"(?<![\w.-])(?:{'|'.join(re.escape(v) for v in values)})(?![\w.-])")


def _name_pattern(names: Iterable[str], vocabulary: Set[str]) -> Optional[re.Pattern[str]]:
    """A user or host name as a word anywhere. One that is also a word of the facts themselves
    (a package, module, env or check named like the user: `merlin`, `gpu`) only beside an @
    (user@host): elsewhere replacing it would rename the thing and change what checks see.
    Home directories are replaced whole in any case, so /home/merlin/... never shows.
    Short plain names match their own case only (host `vm` is not the VM of "bare metal or a
    VM"); distinctive ones (6+ characters, or with a digit, dot, dash or underscore) any case."""

    def form(name: str) -> str:
        distinctive = len(name) >= 6 or bool(re.search(r"[\d._-]", name))
        return f"(?i:{re.escape(name)})" if distinctive else re.escape(name)

    values = sorted({n for n in names if len(n) > 1}, key=len, reverse=True)
    anywhere = [form(n) for n in values if n.lower() not in vocabulary]
    in_context = [form(n) for n in values if n.lower() in vocabulary]
    forms = []
    if anywhere:
        forms.append(rf"(?<![A-Za-z0-9])(?:{'|'.join(anywhere)})(?![A-Za-z0-9])")
    if in_context:
        names_re = "|".join(in_context)
        forms.append(rf"(?<![\w.-])(?:{names_re})(?=@)|(?<=@)(?:{names_re})(?![\w-])")
    return re.compile("|".join(forms)) if forms else None


def vocabulary(data: Any) -> Set[str]:
    """Words the facts use as names of things: dict keys, `name`/`id` values, top-level modules."""
    words: Set[str] = set()

    def walk(value: Any, key: Optional[str]) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str):
                    words.add(k.lower())
                walk(v, k if isinstance(k, str) else None)
        elif isinstance(value, list):
            for item in value:
                walk(item, key)
        elif isinstance(value, str) and key and key.lower() in ("name", "id", "top_level"):
            words.add(value.lower())

    walk(data, None)
    return words


def policy() -> Dict[str, Any]:
    return knowledge.load("redaction")


def _env_map(key: Optional[str], value: Any, rules: Dict[str, Any]) -> bool:
    """A dict of environment variables: under an env-like key, every key shaped like a variable name."""
    return (
        isinstance(value, dict)
        and key is not None
        and key.lower() in rules["env_map_keys"]
        and all(isinstance(k, str) and _ENV_NAME.match(k) for k in value)
    )


def identity_in(data: Any, rules: Optional[Dict[str, Any]] = None) -> Identity:
    """The identities a snapshot itself reveals: USER/HOME/HOSTNAME values, host-name keys, /home/NAME."""
    rules = rules or policy()
    roots = "|".join(re.escape(r.rstrip("/")) for r in rules["home_roots"])
    home_path = re.compile(rf"(?<![\w.-])({roots})/([^/\s:;'\"<>]+)")
    found: Dict[str, List[str]] = {"user": [], "host": [], "home": []}
    names = {v: kind for kind, variables in rules["identity_variables"].items() for v in variables}
    hostname_keys = set(rules["hostname_keys"])

    def walk(value: Any, key: Optional[str]) -> None:
        if _env_map(key, value, rules):
            for name, text in value.items():
                if name in names and isinstance(text, str):
                    found[names[name]].append(text)
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str) and k.lower() in hostname_keys and isinstance(v, str):
                    found["host"].append(v)
                walk(k, None)
                walk(v, k if isinstance(k, str) else None)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, key)
        elif isinstance(value, str):
            for m in home_path.finditer(value):
                found["home"].append(m.group(0))
                found["user"].append(m.group(2))

    walk(data, None)
    public = set(rules["public_addresses"]) | {"localhost"}
    useful = lambda values: tuple(
        dict.fromkeys(  # noqa: E731
            v for v in values if len(v) > 1 and not v.startswith("<") and v not in public and not _is_ip(v)
        )
    )
    return Identity(useful(found["user"]), useful(found["host"]), useful(found["home"]))


class _Redactor:
    def __init__(self, identity: Identity, rules: Dict[str, Any], vocabulary: Set[str]):
        self.rules = rules
        self.secret_name = re.compile(rules["secret_name"])
        self.secret_values = [re.compile(p) for p in rules["secret_values"]]
        self.serial_keys = {k.lower() for k in rules["serial_keys"]}
        self.public = set(rules["public_addresses"])
        words = "|".join(re.escape(w) for w in rules["version_words"])
        contexts = "|".join(rules["version_contexts"])
        self.version_before = re.compile(rf"(?i)\b({words})[\s:=(v]*$|{contexts}")
        self.seen: Dict[str, Dict[str, str]] = {}
        self.secrets = 0
        self.env_dropped = 0
        hosts = list(identity.hosts) + [h.split(".")[0] for h in identity.hosts if "." in h and not _is_ip(h)]
        self.identity = [
            ("home", _home_pattern(identity.homes)),
            ("host", _name_pattern(hosts, vocabulary)),
            ("user", _name_pattern(identity.users, vocabulary)),
        ]

    def placeholder(self, kind: str, value: str) -> str:
        key = value.lower().rstrip("/")
        if kind == "host":
            key = key.split(".")[0]
        known = self.seen.setdefault(kind, {})
        if key not in known:
            n = len(known) + 1
            bare = kind in IDENTITY_KINDS and n == 1
            known[key] = f"<{kind}>" if bare else f"<{kind}-{n}>"
        return known[key]

    def _secret(self, _match: re.Match[str]) -> str:
        self.secrets += 1
        return SECRET

    def _credentials(self, m: re.Match[str]) -> str:
        self.secrets += 1
        return m.group(1) + "<credentials>@"

    def _channel_token(self, m: re.Match[str]) -> str:
        self.secrets += 1
        return m.group(1) + SECRET

    def _assignment(self, m: re.Match[str]) -> str:
        value = m.group("value")
        if value == SECRET:
            return m.group(0)
        if not self.secret_name.search(m.group("name")):  # look inside: PATH=/opt/token=SECRET/lib
            return m.group("name") + m.group("sep") + _ASSIGNMENT.sub(self._assignment, value)
        self.secrets += 1
        return m.group("name") + m.group("sep") + SECRET

    def _address(self, value: str, keep: bool) -> str:
        """An IP placeholder, unless the value is to be kept, public, or no address after all."""
        return value if keep or value in self.public or not _is_ip(value) else self.placeholder("ip", value)

    def _ipv4(self, m: re.Match[str], versioned: bool) -> str:
        before = m.string[max(0, m.start() - 24) : m.start()]
        return self._address(m.group(0), versioned or bool(self.version_before.search(before)))

    def _ipv6(self, m: re.Match[str]) -> str:
        value = m.group(0)
        return self._address(value, not ("::" in value or value.count(":") == 7))

    def text(self, text: str, key: Optional[str] = None) -> str:
        for pattern in self.secret_values:
            text = pattern.sub(self._secret, text)
        text = _URL_CREDENTIALS.sub(self._credentials, text)
        text = _CHANNEL_TOKEN.sub(self._channel_token, text)
        text = _ASSIGNMENT.sub(self._assignment, text)
        text = _UUID.sub(lambda m: self.placeholder("gpu-uuid" if m.group("gpu") else "uuid", m.group(0)), text)
        text = _MAC.sub(
            lambda m: m.group(0) if set(m.group(0)) <= set("0:-") else self.placeholder("mac", m.group(0)), text
        )
        text = _IPV6.sub(self._ipv6, text)
        versioned = bool(key and "version" in key.lower())
        text = _IPV4.sub(lambda m: self._ipv4(m, versioned), text)
        parts = _PLACEHOLDER.split(text)  # never rewrite inside a placeholder already put in
        for kind, known in self.identity:
            if known is not None:
                parts = [
                    p if i % 2 else known.sub(lambda m, k=kind: self.placeholder(k, m.group(0)), p)
                    for i, p in enumerate(parts)
                ]
        return "".join(parts)

    def _environment(self, env: Dict[str, Any]) -> Dict[str, Any]:
        kept = {}
        for name, value in env.items():
            allowed = any(fnmatch.fnmatchcase(name, p) for p in self.rules["env_allowlist"])
            if allowed and not self.secret_name.search(name):
                kept[name] = value
            else:
                self.env_dropped += 1
        return kept

    def value(self, value: Any, key: Optional[str] = None) -> Any:
        if _env_map(key, value, self.rules):
            value = self._environment(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self._item(k, v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(item, key) for item in value]
        if isinstance(value, str):
            return self.text(value, key)
        return value

    def _item(self, key: Any, value: Any) -> Any:
        scalar = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        if isinstance(key, str) and scalar and value != "":
            if self.secret_name.search(key):
                self.secrets += 1
                return SECRET
            if key.lower() in self.serial_keys:
                return self.placeholder("serial", str(value))
        return self.value(value, key if isinstance(key, str) else None)


def redact(
    data: Any, identity: Identity = Identity(), rules: Optional[Dict[str, Any]] = None, keep_words: Iterable[str] = ()
) -> Redaction:
    """A redacted copy of `data`, with the identities it reveals itself added to `identity`.

    `keep_words` name things that must keep their names even if a user or host shares them
    (the recipe's env name, say), on top of the words the data itself uses as names.
    """
    rules = rules or policy()
    words = vocabulary(data) | {w.lower() for w in keep_words if w}
    redactor = _Redactor(identity.merged(identity_in(data, rules)), rules, words)
    out = redactor.value(data)
    replaced = {kind: len(values) for kind, values in redactor.seen.items()}
    return Redaction(out, replaced, redactor.secrets, redactor.env_dropped)
