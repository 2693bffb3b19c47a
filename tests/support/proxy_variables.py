"""The machine's proxy and CA variables, which no test may depend on or leak into.

Imported by the root conftest and by tests/proxy/mitm/conftest.py (that suite runs in .venv-mitm with its own
confcutdir, so it cannot use the root conftest): keep this module free of project imports.
"""

from __future__ import annotations

import pytest

PROXY_VARS = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "NETRC",
)


def clear_proxy_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
