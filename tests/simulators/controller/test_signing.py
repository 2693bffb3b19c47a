"""ControllerSigner: signs the public URL like the controller; our verifier accepts exactly that."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import peewee as pw
import pytest

from endpoint.auth.consumers import ConsumerSecrets
from endpoint.auth.nonces import RecentNonces
from endpoint.auth.oauth import InboundRequest, SignatureVerifier
from endpoint.config.sections import EndpointSettings
from simulators.controller.signing import ControllerSigner, Instance
from tests.support.builders import CONSUMER_KEY, CONSUMER_SECRET, create_consumer

PUBLIC = "https://connector.example.com/"


class Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Recorder.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_document_is_read_and_the_secret_never_shown(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_text(
        json.dumps({"aps": {"endpoint": PUBLIC, "auth": {"oauth": {"key": "k", "secret": "s3cr3t"}}}})
    )
    instance = Instance.from_document(path)
    assert (instance.endpoint, instance.key, instance.secret) == (PUBLIC, "k", "s3cr3t")
    assert "s3cr3t" not in repr(instance)
    path.write_text(json.dumps({"aps": {}}))
    with pytest.raises(ValueError, match="not an application-instance document"):
        Instance.from_document(path)


def test_signature_covers_the_public_url_and_verifies(
    database: pw.Database, recorder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_consumer()
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # ignored: trust_env is off
    signer = ControllerSigner(Instance(PUBLIC, CONSUMER_KEY, CONSUMER_SECRET), connect_to=recorder)
    response = signer.send(
        "POST",
        "tenants?x=1",
        {"a": 1},
        instance_id="3f9c0e7d-2b6a-4c1e-8d5f-7a9b0c2e4d6f",
        controller_uri="https://apsc.example.com:6308/",
        phase="async",
    )
    signer.close()
    assert response.status_code == 200
    seen = Recorder.seen[0]
    headers = seen["headers"]
    assert seen["path"] == "/tenants?x=1" and headers["Host"] == "connector.example.com"
    assert headers["APS-Instance-ID"] == "3f9c0e7d-2b6a-4c1e-8d5f-7a9b0c2e4d6f"
    assert headers["APS-Controller-URI"] == "https://apsc.example.com:6308/"
    assert headers["APS-Request-Phase"] == "async" and headers["APS-Transaction-ID"]
    assert 'oauth_signature_method="HMAC-SHA1"' in headers["Authorization"]
    assert "oauth_body_hash" not in headers["Authorization"]  # JSON bodies travel unsigned, as APSC sends
    secrets = ConsumerSecrets(refresh_interval=2)
    secrets.load()
    verifier = SignatureVerifier(EndpointSettings(public_base_url=PUBLIC), secrets, RecentNonces(300))
    verified = verifier.verify(InboundRequest("POST", seen["path"], headers))
    assert verified.key == CONSUMER_KEY


def test_public_url_join_handles_both_endpoint_forms() -> None:
    for endpoint in ("https://x.example.com/vpsclouds", "https://x.example.com/vpsclouds/"):
        signer = ControllerSigner(Instance(endpoint, "k", "s"))
        assert signer.url("/tenants") == "https://x.example.com/vpsclouds/tenants"
        signer.close()
