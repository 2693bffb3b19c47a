"""AuditLog: one JSON line per flow, secrets never written, the allowlist blocks and logs (also CONNECT)."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from audit import AuditLog
from mitmproxy import exceptions, http
from mitmproxy.test import taddons, tflow
from specs import META_ANSWERED_BY, META_FAULT, META_ORIGIN, META_STANDIN

FlowFactory = Callable[..., http.HTTPFlow]
SECRETS = [
    "S3cr3t-bearer",
    "S3cr3t-proxy",
    "S3cr3t-cyber",
    "S3cr3t-cookie",
    "S3cr3t-query",
    "S3cr3t-json",
    "S3cr3t-form",
    "S3cr3t-setcookie",
    "S3cr3t-jwt",
    "S3cr3t-resp",
]


class Rig:
    """An AuditLog configured inside a taddons context, plus its log file."""

    def __init__(self, tctx: taddons.context, addon: AuditLog, path: Path) -> None:
        self.tctx, self.addon, self.path = tctx, addon, path

    def configure(self, **options) -> None:
        self.tctx.configure(self.addon, **options)

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.path.read_text().splitlines()]

    def complete(self, f: http.HTTPFlow, resp: http.Response | None = None) -> http.HTTPFlow:
        """Run a flow through the hooks mitmproxy calls, with resp as the upstream answer."""
        self.addon.requestheaders(f)
        if not f.response:
            f.response = resp or http.Response.make(
                200, b'{"ok": true}', {"Content-Type": "application/json"}
            )
        self.addon.response(f)
        return f


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    addon = AuditLog()
    with taddons.context(addon) as tctx:
        path = tmp_path / "audit.jsonl"
        tctx.configure(addon, audit_log=str(path))
        yield Rig(tctx, addon, path)
        addon.done()


def test_one_json_line_per_flow(rig: Rig, make_flow: FlowFactory) -> None:
    f = make_flow("https://acronis.example.com/api/2/x?page=2", method="POST", content=b"12345", tls=True)
    rig.complete(f, http.Response.make(201, b"abc"))
    rig.complete(make_flow("http://apsc.example.com:6308/aps/2/"))
    first, second = rig.lines()
    assert {
        k: first[k]
        for k in (
            "id",
            "method",
            "scheme",
            "host",
            "port",
            "path",
            "status",
            "req_bytes",
            "resp_bytes",
            "answered_by",
            "error",
            "mode",
            "client",
        )
    } == {
        "id": f.id,
        "method": "POST",
        "scheme": "https",
        "host": "acronis.example.com",
        "port": 443,
        "path": "/api/2/x?page=2",
        "status": 201,
        "req_bytes": 5,
        "resp_bytes": 3,
        "answered_by": "upstream",
        "error": None,
        "mode": "regular",
        "client": "127.0.0.1",
    }
    assert first["ms"] >= 0 and first["ts"].endswith("+00:00")
    assert (second["host"], second["port"]) == ("apsc.example.com", 6308)


@pytest.mark.parametrize("bodies", [False, True])
def test_secrets_never_reach_the_file(rig: Rig, make_flow: FlowFactory, bodies: bool) -> None:
    rig.configure(audit_bodies=bodies)
    headers = [
        ("Authorization", "Bearer S3cr3t-bearer"),
        ("Proxy-Authorization", "Basic S3cr3t-proxy"),
        ("X-CyberApp-Auth", "S3cr3t-cyber"),
        ("Cookie", "sid=S3cr3t-cookie"),
        ("Content-Type", "application/json"),
    ]
    f = make_flow(
        "https://acronis.example.com/api/2/idp/token?access_token=S3cr3t-query&keep=visible",
        method="POST",
        headers=headers,
        content=b'{"client_secret": "S3cr3t-json", "user": "u1"}',
    )
    resp = http.Response.make(
        200,
        b'{"access_token": "S3cr3t-resp", "expires_in": 60}',
        {"Content-Type": "application/json", "Set-Cookie": "sid=S3cr3t-setcookie"},
    )
    rig.complete(f, resp)
    form = make_flow(
        "http://acronis.example.com/api/2/idp/token?a=eyJhbGciOiJI.eyJzdWIi.S3cr3t-jwt",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        content=b"grant_type=password&password=S3cr3t-form&username=u2",
    )
    rig.complete(form)
    text = rig.path.read_text()
    for secret in SECRETS:
        assert secret not in text
    line = rig.lines()[0]
    assert line["req_headers"]["Authorization"] == "[redacted]"
    assert set(line["req_headers"]) >= {"Authorization", "Proxy-Authorization", "X-CyberApp-Auth", "Cookie"}
    assert line["resp_headers"]["Set-Cookie"] == "[redacted]"
    assert line["path"] == "/api/2/idp/token?access_token=[redacted]&keep=visible"
    if bodies:
        assert json.loads(line["req_body"]) == {"client_secret": "[redacted]", "user": "u1"}
        assert json.loads(line["resp_body"]) == {"access_token": "[redacted]", "expires_in": 60}
        assert "username=u2" in rig.lines()[1]["req_body"]
    else:
        assert "req_body" not in line


def test_extra_redaction_rule(rig: Rig, make_flow: FlowFactory) -> None:
    rig.configure(audit_redact=["X-Tenant-Pin", "pin"])
    rig.complete(make_flow("http://a.example.com/x?pin=4321", headers={"X-Tenant-Pin": "8765"}))
    text = rig.path.read_text()
    assert "4321" not in text and "8765" not in text


def test_allowlist_blocks_and_logs(rig: Rig, make_flow: FlowFactory) -> None:
    rig.configure(audit_allow=["acronis.example.com:443", "apsc.example.com"])
    blocked = rig.complete(make_flow("http://evil.example.org/exfil?x=1"))
    assert blocked.response.status_code == 403
    assert json.loads(blocked.response.content)["error"] == "egress_blocked"
    wrong_port = rig.complete(make_flow("http://acronis.example.com/x"))
    assert wrong_port.response.status_code == 403
    allowed = rig.complete(make_flow("https://acronis.example.com/x", tls=True))
    assert allowed.response.status_code == 200
    assert rig.complete(make_flow("http://apsc.example.com:6308/")).response.status_code == 200
    assert [(x["host"], x["status"], x["answered_by"]) for x in rig.lines()] == [
        ("evil.example.org", 403, "blocked"),
        ("acronis.example.com", 403, "blocked"),
        ("acronis.example.com", 200, "upstream"),
        ("apsc.example.com", 200, "upstream"),
    ]


def test_allowlist_uses_the_origin_not_the_standin(rig: Rig, make_flow: FlowFactory) -> None:
    rig.configure(audit_allow=["acronis.example.com:443"])
    f = make_flow("http://127.0.0.1:9101/api/x")
    f.metadata.update(
        {
            META_ORIGIN: ("https", "acronis.example.com", 443),
            META_STANDIN: "http://127.0.0.1:9101",
            META_ANSWERED_BY: "stand-in",
        }
    )
    rig.complete(f)
    (line,) = rig.lines()
    assert (line["scheme"], line["host"], line["port"], line["status"]) == (
        "https",
        "acronis.example.com",
        443,
        200,
    )
    assert (line["answered_by"], line["standin"]) == ("stand-in", "http://127.0.0.1:9101")


def test_empty_allowlist_allows_everything(rig: Rig, make_flow: FlowFactory) -> None:
    assert rig.complete(make_flow("http://anything.example.net/")).response.status_code == 200


def test_connect_is_checked_and_logged(rig: Rig, make_flow: FlowFactory) -> None:
    rig.configure(audit_allow=["acronis.example.com:443"])
    bad = make_flow("evil.example.org:443", method="CONNECT")
    rig.addon.http_connect(bad)
    assert bad.response.status_code == 403
    rig.addon.http_connect_error(bad)
    good = make_flow("acronis.example.com:443", method="CONNECT")
    rig.addon.http_connect(good)
    assert good.response is None
    good.response = http.Response.make(200)
    rig.addon.http_connected(good)
    assert [
        (x["method"], x["host"], x["port"], x["path"], x["status"], x["answered_by"]) for x in rig.lines()
    ] == [
        ("CONNECT", "evil.example.org", 443, "", 403, "blocked"),
        ("CONNECT", "acronis.example.com", 443, "", 200, "upstream"),
    ]


def test_connect_block_overrides_standin_acceptance(rig: Rig, make_flow: FlowFactory) -> None:
    rig.configure(audit_allow=["apsc.example.com"])
    f = make_flow("acronis.example.com:443", method="CONNECT")
    f.response = http.Response.make(200)
    f.metadata[META_ANSWERED_BY] = "stand-in"
    rig.addon.http_connect(f)
    assert f.response.status_code == 403 and f.metadata[META_ANSWERED_BY] == "blocked"


def test_errors_and_faults_are_logged_once(rig: Rig, make_flow: FlowFactory) -> None:
    down = make_flow("http://acronis.example.com/x")
    rig.addon.requestheaders(down)
    down.error = tflow.terr("Connection refused")
    rig.addon.error(down)
    reset = make_flow("http://acronis.example.com/y")
    reset.metadata.update({META_FAULT: ["reset@*"], META_ANSWERED_BY: "fault"})
    reset.kill()
    rig.addon.error(reset)
    late = rig.complete(make_flow("http://acronis.example.com/z"))
    late.error = tflow.terr("client disconnected")
    rig.addon.error(late)
    assert [(x["path"], x["status"], x["answered_by"], x["error"], x["fault"]) for x in rig.lines()] == [
        ("/x", None, "proxy", "Connection refused", None),
        ("/y", None, "fault", "Connection killed.", ["reset@*"]),
        ("/z", 200, "upstream", None, None),
    ]


def test_file_is_private_and_appended(tmp_path: Path, make_flow: FlowFactory) -> None:
    path = tmp_path / "audit.jsonl"
    for _ in range(2):
        addon = AuditLog()
        with taddons.context(addon) as tctx:
            tctx.configure(addon, audit_log=str(path))
            addon.response(tflow.tflow(resp=True))
            addon.done()
    assert len(path.read_text().splitlines()) == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_without_file_lines_go_to_the_event_log(
    make_flow: FlowFactory, caplog: pytest.LogCaptureFixture
) -> None:
    addon = AuditLog()
    with taddons.context(addon), caplog.at_level(logging.INFO, logger="audit"):
        addon.response(tflow.tflow(resp=True))
    (record,) = [r for r in caplog.records if r.name == "audit"]
    assert json.loads(record.getMessage().removeprefix("audit "))["status"] == 200


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"audit_allow": ["bad host"]}, "audit_allow"),
        ({"audit_allow": ["a:99999"]}, "audit_allow"),
        ({"audit_redact": ["a b"]}, "audit_redact"),
        ({"audit_log": "/nonexistent/dir/audit.jsonl"}, "audit_log"),
    ],
)
def test_bad_options_are_options_errors(options: dict, message: str) -> None:
    addon = AuditLog()
    with taddons.context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError, match=message):
            tctx.configure(addon, **options)


def test_script_loads_like_mitmdump_s(mitm_dir: Path) -> None:
    with taddons.context() as tctx:
        script = tctx.script(str(mitm_dir / "audit.py"))
        assert [type(a).__name__ for a in script.addons] == ["AuditLog"]


def test_the_jwks_fetch_is_audited_like_any_flow(rig: Rig, make_flow: FlowFactory) -> None:
    """The endpoint's key fetch in the stack's gateway mode: allowed, routed to the simulator, one line."""
    rig.configure(
        audit_allow=["eu8-cloud.acronis.com:443", "controller.example.net:6308", "acronis.cloud:443"],
        audit_bodies=True,
    )
    f = make_flow("http://127.0.0.1:9101/api/idp/v1/keys")
    f.metadata.update(
        {
            META_ORIGIN: ("https", "acronis.cloud", 443),
            META_STANDIN: "http://127.0.0.1:9101",
            META_ANSWERED_BY: "stand-in",
        }
    )
    jwks = {"keys": [{"use": "sig", "kty": "RSA", "kid": "k1", "alg": "RS256", "n": "AQAB", "e": "AQAB"}]}
    rig.complete(f, http.Response.make(200, json.dumps(jwks), {"Content-Type": "application/json"}))
    elsewhere = rig.complete(make_flow("https://eu8.acronis.cloud/api/idp/v1/keys"))
    (line, blocked) = rig.lines()
    assert (line["method"], line["host"], line["port"], line["path"], line["status"]) == (
        "GET",
        "acronis.cloud",
        443,
        "/api/idp/v1/keys",
        200,
    )
    assert line["answered_by"] == "stand-in" and json.loads(line["resp_body"]) == jwks  # public keys only
    assert elsewhere.response.status_code == 403 and blocked["answered_by"] == "blocked"


@pytest.mark.parametrize("url", ["acronis.example.com:443", "http://acronis.example.com/api/2/x"])
def test_the_407_of_mitmproxys_own_proxyauth_is_audited_as_proxy(
    tmp_path: Path, make_flow: FlowFactory, url: str
) -> None:
    """Built-in addons run before the scripts: proxyauth answers before the stand-in could claim the flow."""
    from mitmproxy.addons.proxyauth import ProxyAuth
    from standins import StandIns

    proxyauth, audit, standins = ProxyAuth(), AuditLog(), StandIns()
    path = tmp_path / "audit.jsonl"
    with taddons.context(proxyauth, audit, standins) as tctx:
        tctx.configure(proxyauth, proxyauth="user:pass")
        tctx.configure(audit, audit_log=str(path), audit_allow=["acronis.example.com"])
        tctx.configure(standins, standins=["acronis.example.com=http://127.0.0.1:9101"])
        flow = make_flow(url, method="CONNECT" if "://" not in url else "GET")
        if flow.request.method == "CONNECT":
            for addon in (proxyauth, audit, standins):  # mitmproxy's order: built-ins, then the scripts
                addon.http_connect(flow)
            audit.http_connect_error(flow)
        else:
            for addon in (proxyauth, audit):
                addon.requestheaders(flow)
            standins.request(flow)
            audit.response(flow)
        audit.done()
    assert flow.response is not None and flow.response.status_code == 407
    [line] = [json.loads(x) for x in path.read_text().splitlines()]
    assert (line["status"], line["answered_by"], line["standin"]) == (407, "proxy", None)
