"""Addon-test fixtures: the addon scripts on sys.path (as mitmdump -s has them) and flow builders."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from mitmproxy import http
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import tflow, tutils

from tests.support.proxy_variables import clear_proxy_environ

MITM_DIR = Path(__file__).resolve().parents[3] / "proxy" / "mitm"
# mitmdump puts a script's directory on sys.path while loading it; the scripts import their sibling specs.py.
if str(MITM_DIR) not in sys.path:
    sys.path.insert(0, str(MITM_DIR))


FlowFactory = Callable[..., http.HTTPFlow]


def pytest_configure(config: pytest.Config) -> None:
    # mitmproxy's proxyauth imports ldap3 and passlib, which warn about their own dependencies.
    for module in ("ldap3", "passlib"):
        config.addinivalue_line("filterwarnings", f"ignore::DeprecationWarning:{module}.*")


@pytest.fixture(autouse=True)
def clean_proxy_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same rule as the root conftest (not loaded here): no test depends on the machine's proxy settings."""
    clear_proxy_environ(monkeypatch)


@pytest.fixture
def mitm_dir() -> Path:
    return MITM_DIR


def build_flow(
    url: str = "http://api.example.com/path",
    *,
    method: str = "GET",
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    content: bytes = b"",
    tls: bool = False,
    mode: str = "regular",
    peer: str = "127.0.0.1",
) -> http.HTTPFlow:
    """A live flow as mitmproxy hands it to addons: absolute URL, Host header, client connection details."""
    if method == "CONNECT":
        host, _, port = url.rpartition(":")
        req = tutils.treq(
            method=b"CONNECT",
            scheme=b"",
            host=host,
            port=int(port),
            authority=url.encode(),
            path=b"",
            headers=http.Headers(host=url),
            content=b"",
        )
    else:
        req = http.Request.make(method, url, content)
        req.headers.clear()
        req.headers["Host"] = urlsplit(url).netloc
    items = headers.items() if isinstance(headers, dict) else headers or []
    for name, value in items:
        req.headers.add(name, value)
    flow = tflow.tflow(req=req)
    flow.client_conn.tls = tls
    flow.client_conn.peername = (peer, 50000)
    flow.client_conn.proxy_mode = ProxyMode.parse(mode)
    return flow


@pytest.fixture
def make_flow() -> FlowFactory:
    return build_flow
