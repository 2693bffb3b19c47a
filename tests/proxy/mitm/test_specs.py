"""Option parsers and the redactor, tested without a proxy."""

from __future__ import annotations

import json

import pytest
import specs
from specs import (
    REDACTED,
    FaultRule,
    HostPattern,
    Origin,
    StandIn,
    make_redactor,
    origin_of,
    parse_allow,
    parse_controller_uri,
    parse_fault,
    parse_host_pattern,
    parse_redact_rule,
    parse_standin,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("acronis.example.com", HostPattern("acronis.example.com", None)),
        ("API.Example.COM:443", HostPattern("api.example.com", 443)),
        ("*.example.com:*", HostPattern("*.example.com", None)),
        ("example.com.", HostPattern("example.com", None)),
        ("127.0.0.1:9101", HostPattern("127.0.0.1", 9101)),
        ("[::1]:8080", HostPattern("::1", 8080)),
        ("[::1]", HostPattern("::1", None)),
        ("*", HostPattern("*", None)),
    ],
)
def test_parse_host_pattern(text: str, expected: HostPattern) -> None:
    assert parse_host_pattern(text) == expected
    assert parse_allow(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "ho st", *":443 host: host:0 host:65536 host:https ::1:80 [zz]:1 [::1]x [::1 host/path u@h".split()],
)
def test_parse_host_pattern_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_host_pattern(text)


@pytest.mark.parametrize(
    ("pattern", "host", "port", "expected"),
    [
        ("acronis.example.com", "ACRONIS.example.com", 443, True),
        ("acronis.example.com", "acronis.example.com.", 80, True),
        ("acronis.example.com:443", "acronis.example.com", 80, False),
        ("*.example.com", "eu2.example.com", 443, True),
        ("*.example.com", "example.com", 443, False),
        ("*.example.com", "example.com.evil.org", 443, False),
        ("*", "anything.org", 1, True),
    ],
)
def test_host_pattern_matches(pattern: str, host: str, port: int, expected: bool) -> None:
    assert parse_host_pattern(pattern).matches(host, port) is expected


@pytest.mark.parametrize(
    ("text", "kind", "status", "retry_after", "delay", "path", "rate", "every"),
    [
        (
            "503@api.example.com/api/alert_manager/*?rate=0.5",
            "status",
            503,
            None,
            0.0,
            "/api/alert_manager/*",
            0.5,
            0,
        ),
        ("429@*", "status", 429, 1, 0.0, "*", 1.0, 0),
        ("429:30@*?every=3", "status", 429, 30, 0.0, "*", 1.0, 3),
        ("503:7@*", "status", 503, 7, 0.0, "*", 1.0, 0),
        ("407@proxy.example.com:443", "status", 407, None, 0.0, "*", 1.0, 0),
        ("delay:2.5@apsc.example.com", "delay", 0, None, 2.5, "*", 1.0, 0),
        ("latency:0.1@*/x?rate=0", "delay", 0, None, 0.1, "/x", 0.0, 0),
        ("reset@*.example.com/api/*?every=10", "reset", 0, None, 0.0, "/api/*", 1.0, 10),
    ],
)
def test_parse_fault(
    text: str,
    kind: str,
    status: int,
    retry_after: int | None,
    delay: float,
    path: str,
    rate: float,
    every: int,
) -> None:
    rule = parse_fault(text)
    assert isinstance(rule, FaultRule)
    assert (
        rule.text,
        rule.kind,
        rule.status,
        rule.retry_after,
        rule.delay,
        rule.path,
        rule.rate,
        rule.every,
    ) == (text, kind, status, retry_after, delay, path, rate, every)


def test_parse_fault_target_host_and_port() -> None:
    assert parse_fault("503@[::1]:8080/x").where == HostPattern("::1", 8080)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus", "ACTION@TARGET"),
        ("503", "ACTION@TARGET"),
        ("@host", "ACTION@TARGET"),
        ("503@", "ACTION@TARGET"),
        ("200@host", "action must be"),
        ("600@host", "action must be"),
        ("reset:1@host", "action must be"),
        ("503:soon@host", "Retry-After"),
        ("delay@host", "delay needs"),
        ("delay:0@host", "delay needs"),
        ("delay:301@host", "delay needs"),
        ("delay:x@host", "delay needs"),
        ("503@host?rate=1.5", "frequency"),
        ("503@host?rate=-0.1", "frequency"),
        ("503@host?every=0", "frequency"),
        ("503@host?every=2.5", "frequency"),
        ("503@host?often", "frequency"),
        ("503@/api/*", "target"),
        ("503@host/a b", "target"),
        ("503@host:99999", "port"),
    ],
)
def test_parse_fault_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fault(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "acronis.example.com=http://127.0.0.1:9101",
            StandIn("acronis.example.com", None, "http", "127.0.0.1", 9101),
        ),
        (
            "APSC.example.com:6308=http://127.0.0.1:9102/",
            StandIn("apsc.example.com", 6308, "http", "127.0.0.1", 9102),
        ),
        ("a.example.com=https://localhost", StandIn("a.example.com", None, "https", "localhost", 443)),
        ("a.example.com=http://[::1]:81", StandIn("a.example.com", None, "http", "::1", 81)),
    ],
)
def test_parse_standin(text: str, expected: StandIn) -> None:
    assert parse_standin(text) == expected


def test_standin_url() -> None:
    assert parse_standin("a=http://[::1]:81").url == "http://[::1]:81"
    assert parse_standin("a=http://127.0.0.1").url == "http://127.0.0.1:80"


@pytest.mark.parametrize(
    "text",
    """acronis.example.com =http://127.0.0.1:1 a.example.com= *.example.com=http://127.0.0.1:1 a=ftp://127.0.0.1
    a=127.0.0.1:9101 a=http://127.0.0.1:9101/api a=http://127.0.0.1:1?x=1 a=http://u:p@127.0.0.1:1
    a=http://127.0.0.1:99999""".split(),
)
def test_parse_standin_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_standin(text)


@pytest.mark.parametrize("text", ["https://apsc.example.com:6308/", "http://127.0.0.1:9102/aps/"])
def test_parse_controller_uri_keeps_value(text: str) -> None:
    assert parse_controller_uri(text) == text


@pytest.mark.parametrize(
    "text", ["apsc.example.com", "ftp://x/", "https:///", "https://x/?a=1", "https://x/#f"]
)
def test_parse_controller_uri_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_controller_uri(text)


@pytest.mark.parametrize(("text", "expected"), [("X-Api-Key", "x_api_key"), ("*pin*", "*pin*")])
def test_parse_redact_rule(text: str, expected: str) -> None:
    assert parse_redact_rule(text) == expected


@pytest.mark.parametrize("text", ["", "  ", "a b", "x/y"])
def test_parse_redact_rule_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        make_redactor([text])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/x?access_token=abc&b=2", f"/api/x?access_token={REDACTED}&b=2"),
        (
            "/t?client_secret=s3&grant_type=client_credentials",
            f"/t?client_secret={REDACTED}&grant_type=client_credentials",
        ),
        ("/t?Password=hunter2", f"/t?Password={REDACTED}"),
        ("/t?oauth_signature=abc%3D&oauth_nonce=n", f"/t?oauth_signature={REDACTED}&oauth_nonce=n"),
        ("/t?a=eyJhbGciOi.eyJzdWIiOi.sig", f"/t?a={REDACTED}"),
        ("/t?h=Bearer%20abc", f"/t?h={REDACTED}"),
        ("/t?q=%20a+b&flag&x=", "/t?q=%20a+b&flag&x="),
        ("/plain/path", "/plain/path"),
        ("/p?", "/p?"),
    ],
)
def test_redact_path(path: str, expected: str) -> None:
    assert make_redactor().path(path) == expected


def test_redact_headers_names_kept_values_hidden() -> None:
    fields = [
        ("Authorization", "OAuth oauth_signature=x"),
        ("X-CyberApp-Auth", "dXNlcjpwYXNz"),
        ("Cookie", "sid=1"),
        ("Cookie", "sid=2"),
        ("Accept", "a"),
        ("Accept", "b"),
        ("X-Custom", "Bearer t0k"),
        ("Proxy-Authenticate", 'Basic realm="r"'),
    ]
    assert make_redactor().headers(fields) == {
        "Authorization": REDACTED,
        "X-CyberApp-Auth": REDACTED,
        "Cookie": f"{REDACTED}, {REDACTED}",
        "Accept": "a, b",
        "X-Custom": REDACTED,
        "Proxy-Authenticate": 'Basic realm="r"',
    }


def test_extra_redact_rule_applies() -> None:
    assert make_redactor().path("/x?pin=1") == "/x?pin=1"
    assert make_redactor(["PIN"]).path("/x?pin=1") == f"/x?pin={REDACTED}"


def test_redact_json_value_recursively() -> None:
    doc = {"id": "c", "client_secret": "s", "list": [{"password": "p", "ok": 1}], "note": "Basic dXNlcjpw"}
    redacted = make_redactor().value({**doc, "access_token": {"deep": "t"}})
    assert redacted == {**doc, "client_secret": REDACTED, "list": [{"password": REDACTED, "ok": 1}],
                        "note": REDACTED, "access_token": REDACTED}  # fmt: skip


@pytest.mark.parametrize(
    ("content", "ctype", "expected"),
    [
        (
            b'{"password": "p", "a": 1}',
            "application/json; charset=utf-8",
            json.dumps({"password": REDACTED, "a": 1}),
        ),
        (b'{"access_token": "t"}', "application/vnd.api+json", json.dumps({"access_token": REDACTED})),
        (
            b"grant_type=x&client_secret=s",
            "application/x-www-form-urlencoded",
            f"grant_type=x&client_secret={REDACTED}",
        ),
        (b"{not json", "application/json", "[9 bytes of invalid JSON]"),
        (b"password=p", "text/plain", "[10 bytes text/plain]"),
        (b"\x00\x01", "", "[2 bytes untyped]"),
    ],
)
def test_redact_body(content: bytes, ctype: str, expected: str) -> None:
    assert make_redactor().body(content, ctype) == expected


def test_redact_body_truncates() -> None:
    out = make_redactor().body(json.dumps({"a": "x" * 100}).encode(), "application/json", limit=20)
    assert out.endswith("...[truncated]") and len(out) == 20 + len("...[truncated]")


def test_origin_of_prefers_saved_origin() -> None:
    assert origin_of({}, "http", "127.0.0.1", 9101) == Origin("http", "127.0.0.1", 9101)
    saved = {specs.META_ORIGIN: ("https", "acronis.example.com", 443)}
    assert origin_of(saved, "http", "127.0.0.1", 9101) == Origin("https", "acronis.example.com", 443)
