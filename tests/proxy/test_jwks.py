"""fetch_jwks: through the one session (proxy, CA bundle, timeouts), no redirects, bounded size and time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from proxy.errors import TransportError
from proxy.jwks import JwksRefused, fetch_jwks
from proxy.session import ProxySettings, build_session
from tests.support.gateway_tokens import JwksServer, jwks, public_jwk
from tests.support.simulator_processes import Tls, free_port, make_tls
from tests.support.stub_adapter import StubAdapter


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("jwks-tls"))


@pytest.fixture
def server(tls: Tls) -> Iterator[JwksServer]:
    with JwksServer(tls.cert_pem, tls.key_pem) as running:
        yield running


def session_for(tls: Tls) -> requests.Session:
    return build_session(ProxySettings(ca_bundle=tls.ca_pem), {})


def test_fetches_the_document_over_tls_with_the_configured_ca(server: JwksServer, tls: Tls) -> None:
    assert fetch_jwks(session_for(tls), server.url) == server.document
    assert server.hits == 1


def test_an_untrusted_certificate_is_a_transport_error(server: JwksServer, tmp_path: Path) -> None:
    other = make_tls(tmp_path)  # another CA: the server's certificate is not trusted
    with pytest.raises(TransportError, match="SSLError"):
        fetch_jwks(session_for(other), server.url)


@pytest.mark.parametrize("status", [503, 404, 302])
def test_anything_but_200_is_refused_and_redirects_are_not_followed(
    server: JwksServer, tls: Tls, status: int
) -> None:
    server.status = status
    with pytest.raises(JwksRefused, match=f"HTTP {status}"):
        fetch_jwks(session_for(tls), server.url)
    assert server.hits == 1


def test_an_oversized_document_is_refused_by_its_length(server: JwksServer, tls: Tls) -> None:
    server.document = jwks(*[public_jwk(0, kid=f"k{i}") for i in range(4)])
    with pytest.raises(JwksRefused, match="at most 1024"):
        fetch_jwks(session_for(tls), server.url, max_bytes=1024)


class Streaming(StubAdapter):
    """Answers a body of unknown length (no Content-Length), as a chunked response would arrive."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = super().send(request, **kwargs)
        response._content_consumed = True  # iter_content then slices _content
        return response


def test_an_oversized_body_without_a_length_is_cut_off() -> None:
    session = build_session(ProxySettings(), {})
    session.mount("https://", Streaming(lambda request: (200, {}, b"x" * 5000)))
    with pytest.raises(JwksRefused, match="over 1024 bytes"):
        fetch_jwks(session, "https://acronis.cloud/api/idp/v1/keys", max_bytes=1024)


def test_the_request_goes_through_the_configured_proxy_with_its_timeouts() -> None:
    settings = ProxySettings(url="http://proxy.internal:3128", connect_timeout=2.0, read_timeout=7.0)
    session = build_session(settings, {})
    stub = Streaming(lambda request: (200, {}, b'{"keys": []}'))
    session.mount("https://", stub)
    assert fetch_jwks(session, "https://acronis.cloud/api/idp/v1/keys") == b'{"keys": []}'
    [call] = stub.calls
    assert call["proxies"] == {"http": "http://proxy.internal:3128", "https": "http://proxy.internal:3128"}
    assert call["timeout"] == (2.0, 7.0) and call["method"] == "GET"
    assert call["headers"]["Accept"] == "application/json"


def test_an_unreachable_host_is_a_transport_error(tls: Tls) -> None:
    with pytest.raises(TransportError, match="ConnectionError"):
        fetch_jwks(session_for(tls), f"https://127.0.0.1:{free_port()}/keys")


def test_a_body_that_trickles_in_past_the_deadline_is_refused() -> None:
    session = build_session(ProxySettings(), {})
    session.mount("https://", Streaming(lambda request: (200, {}, b"{" * 100)))
    with pytest.raises(JwksRefused, match="not received within"):
        fetch_jwks(session, "https://acronis.cloud/api/idp/v1/keys", deadline=-1)
