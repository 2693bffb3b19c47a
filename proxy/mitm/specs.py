"""Pure parsers for the rig's option strings: hosts, faults, allowlist, stand-ins, redaction."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import unquote_plus, urlsplit

# flow.metadata keys shared by the addons (they are separate scripts, so the contract lives here).
META_ORIGIN = "rig.origin"  # (scheme, host, port) the client asked for, set before a stand-in rewrite
META_ANSWERED_BY = "rig.answered_by"  # "blocked" | "fault" | "stand-in" when an addon answered or routed
META_STANDIN = "rig.standin"  # the stand-in URL a flow was routed to
META_FAULT = "rig.fault"  # list of fault rules that fired on the flow

REDACTED = "[redacted]"
_HOST_RE = re.compile(r"^[a-z0-9*?_.-]+$")
_KEY_RE = re.compile(r"^[a-z0-9_*?.-]+$")
_LOOKS_SECRET = re.compile(
    r"^(?:(?:bearer|basic|oauth|digest|negotiate)\s+\S|eyJ[\w-]{4,}\.[\w-]{4,}\.)", re.IGNORECASE
)
# Always redacted, whatever the audit_redact option says. Matched against lower-cased names with "-" -> "_".
DEFAULT_SECRET_KEYS: tuple[str, ...] = tuple(
    """*token* *secret* *password* passwd pwd *signature* *api_key* apikey *credential* assertion
    client_assertion private_key authorization proxy_authorization x_cyberapp_auth cookie set_cookie
    """.split()
)


class HostPattern(NamedTuple):
    """A case-insensitive host glob ("*" = any, "*.example.com") and an optional exact port."""

    host: str
    port: int | None

    def matches(self, host: str, port: int) -> bool:
        return fnmatch.fnmatchcase(host.lower().rstrip("."), self.host) and self.port in (None, port)


class Origin(NamedTuple):
    """The destination a client asked for."""

    scheme: str
    host: str
    port: int


class FaultRule(NamedTuple):
    """One drill rule: an action, where it applies, and how often it fires."""

    text: str
    kind: str  # "status" | "delay" | "reset"
    status: int  # for "status"; 407 also gets Proxy-Authenticate
    retry_after: int | None  # Retry-After seconds for "status"
    delay: float  # seconds for "delay"
    where: HostPattern
    path: str  # path glob, "*" = any path (only "*" rules can match a CONNECT)
    rate: float  # 0..1 chance per matching request
    every: int  # > 0: fire on every Nth matching request instead of by rate


class StandIn(NamedTuple):
    """Requests for host (any port unless port is set) go to target_scheme://target_host:target_port."""

    host: str
    port: int | None
    target_scheme: str
    target_host: str
    target_port: int

    @property
    def url(self) -> str:
        host = f"[{self.target_host}]" if ":" in self.target_host else self.target_host
        return f"{self.target_scheme}://{host}:{self.target_port}"


def _parse_port(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{what}: port must be 1..65535, got {text!r}")
    return int(text)


def parse_host_pattern(text: str) -> HostPattern:
    """Parse "HOSTGLOB[:PORT]" ("[v6]:PORT" for IPv6; PORT "*" or absent = any); raise ValueError."""
    spec = text.strip().lower()
    if spec.startswith("["):
        host, sep, rest = spec[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")) or not re.fullmatch(r"[0-9a-f:.]+", host):
            raise ValueError(f"{text!r}: bad bracketed IPv6 host")
        colon, port_text = rest[:1], rest[1:]
    else:
        if spec.count(":") > 1:
            raise ValueError(f"{text!r}: put IPv6 addresses in brackets, e.g. [::1]:8080")
        host, colon, port_text = spec.partition(":")
        if not _HOST_RE.match(host):
            raise ValueError(f"{text!r}: host must be a name, an IP or a glob such as *.example.com")
    port = None if port_text == "*" or not colon else _parse_port(port_text, text)
    return HostPattern(host.rstrip("."), port)


def parse_allow(text: str) -> HostPattern:
    """Parse one audit_allow entry, "HOSTGLOB[:PORT]"; raise ValueError."""
    return parse_host_pattern(text)


def _parse_frequency(text: str, spec: str) -> tuple[float, int]:
    key, sep, value = text.partition("=")
    try:
        if key == "rate" and sep:
            rate = float(value)
            if not 0.0 <= rate <= 1.0:
                raise ValueError
            return rate, 0
        if key == "every" and sep:
            every = int(value)
            if every < 1:
                raise ValueError
            return 1.0, every
    except ValueError:
        pass
    raise ValueError(f"{spec!r}: frequency must be rate=0..1 or every=N (N >= 1), got {text!r}")


def _parse_action(action: str, spec: str) -> tuple[str, int, int | None, float]:
    name, _, arg = action.partition(":")
    if name == "reset" and not arg:
        return "reset", 0, None, 0.0
    if name in ("delay", "latency"):
        try:
            seconds = float(arg)
        except ValueError:
            seconds = -1.0
        if not 0.0 < seconds <= 300.0:
            raise ValueError(f"{spec!r}: delay needs seconds in (0, 300], e.g. delay:2.5")
        return "delay", 0, None, seconds
    if name.isdigit() and 400 <= int(name) <= 599:
        status = int(name)
        if arg and not arg.isdigit():
            raise ValueError(f"{spec!r}: Retry-After must be whole seconds, got {arg!r}")
        retry_after = int(arg) if arg else (1 if status == 429 else None)
        return "status", status, retry_after, 0.0
    raise ValueError(f"{spec!r}: action must be a 4xx/5xx status[:retry-after], delay:SECONDS or reset")


def parse_fault(text: str) -> FaultRule:
    """Parse "ACTION@HOSTGLOB[:PORT][/PATHGLOB][?rate=R|?every=N]"; raise ValueError."""
    spec = text.strip()
    action, sep, rest = spec.partition("@")
    if not sep or not action or not rest:
        raise ValueError(f"{text!r}: expected ACTION@TARGET, e.g. 503@api.example.com/api/*?rate=0.5")
    kind, status, retry_after, delay = _parse_action(action.lower(), text)
    target, _, frequency = rest.partition("?")
    rate, every = _parse_frequency(frequency, text) if frequency else (1.0, 0)
    slash = target.find("/")
    host_text, path = (target, "*") if slash < 0 else (target[:slash], target[slash:])
    if not host_text or any(c.isspace() for c in path):
        raise ValueError(f"{text!r}: target must be HOSTGLOB[:PORT][/PATHGLOB]")
    where = parse_host_pattern(host_text)
    return FaultRule(spec, kind, status, retry_after, delay, where, path, rate, every)


def parse_standin(text: str) -> StandIn:
    """Parse "HOST[:PORT]=http://127.0.0.1:9101" (scheme, host and port only); raise ValueError."""
    source, sep, url = text.strip().partition("=")
    if not sep or not source or not url:
        raise ValueError(
            f"{text!r}: expected HOST[:PORT]=URL, e.g. acronis.example.com=http://127.0.0.1:9101"
        )
    where = parse_host_pattern(source)
    if any(c in where.host for c in "*?"):
        raise ValueError(f"{text!r}: stand-in hosts are exact names, not globs")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ValueError(f"{text!r}: bad stand-in URL: {e}") from e
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{text!r}: stand-in URL must be http:// or https:// with a host")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{text!r}: stand-in URL takes no path, query or credentials (the path is kept)")
    port = port or (443 if parts.scheme == "https" else 80)
    return StandIn(where.host, where.port, parts.scheme, parts.hostname, port)


def parse_controller_uri(text: str) -> str:
    """Validate an APS-Controller-URI value (absolute http(s) URL, no query); return it unchanged."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"{text!r}: APS-Controller-URI must be an absolute http(s) URL without query")
    return text


def parse_redact_rule(text: str) -> str:
    """Parse an extra secret key name or glob ("x_api_key", "*pin*"); return it normalized."""
    rule = normalize_key(text.strip())
    if not rule or not _KEY_RE.match(rule):
        raise ValueError(f"{text!r}: redaction rule must be a key name or glob (letters, digits, _ - . * ?)")
    return rule


def normalize_key(name: str) -> str:
    return name.lower().replace("-", "_")


@dataclass(frozen=True)
class Redactor:
    """Replaces secret values (by key name glob, or by looking like a credential) with "[redacted]"."""

    rules: tuple[str, ...] = DEFAULT_SECRET_KEYS

    def is_secret_key(self, name: str) -> bool:
        key = normalize_key(name)
        return any(fnmatch.fnmatchcase(key, rule) for rule in self.rules)

    def is_secret(self, name: str, value: str) -> bool:
        return self.is_secret_key(name) or bool(_LOOKS_SECRET.match(value.strip()))

    def query(self, query: str) -> str:
        """Redact values in a raw query string, keeping keys and order as sent."""
        out = []
        for item in query.split("&"):
            key, sep, value = item.partition("=")
            if sep and self.is_secret(unquote_plus(key), unquote_plus(value)):
                item = f"{key}={REDACTED}"
            out.append(item)
        return "&".join(out)

    def path(self, path: str) -> str:
        base, sep, query = path.partition("?")
        return base + sep + self.query(query) if sep else base

    def headers(self, fields: Iterable[tuple[str, str]]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in fields:
            # A *-Authenticate value is a challenge ("Basic realm=..."), not a credential.
            challenge = name.lower().endswith("-authenticate")
            if self.is_secret_key(name) or (not challenge and self.is_secret(name, value)):
                value = REDACTED
            out[name] = f"{out[name]}, {value}" if name in out else value
        return out

    def value(self, obj: Any) -> Any:
        """Redact a decoded JSON value recursively."""
        if isinstance(obj, Mapping):
            return {k: REDACTED if self.is_secret_key(str(k)) else self.value(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.value(v) for v in obj]
        if isinstance(obj, str) and _LOOKS_SECRET.match(obj.strip()):
            return REDACTED
        return obj

    def body(self, content: bytes, content_type: str, limit: int = 4096) -> str:
        """Render a JSON or form body with secrets redacted; other bodies only by size and type."""
        ctype = content_type.split(";")[0].strip().lower()
        text = content.decode("utf-8", "replace")
        if ctype == "application/json" or ctype.endswith("+json"):
            try:
                rendered = json.dumps(self.value(json.loads(text)), ensure_ascii=False)
            except ValueError:
                return f"[{len(content)} bytes of invalid JSON]"
        elif ctype == "application/x-www-form-urlencoded":
            rendered = self.query(text)
        else:
            return f"[{len(content)} bytes {ctype or 'untyped'}]"
        return rendered if len(rendered) <= limit else rendered[:limit] + "...[truncated]"


def make_redactor(extra: Iterable[str] = ()) -> Redactor:
    """The default secret keys plus extra rules; raise ValueError on a bad rule."""
    return Redactor(DEFAULT_SECRET_KEYS + tuple(parse_redact_rule(r) for r in extra))


def origin_of(metadata: Mapping[str, Any], scheme: str, host: str, port: int) -> Origin:
    """The destination the client asked for, even after a stand-in rewrote the request."""
    saved = metadata.get(META_ORIGIN)
    return Origin(*saved) if saved else Origin(scheme, host, port)
