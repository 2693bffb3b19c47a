"""hand-over-key: the rotated secret reaches the controller, which then signs and verifies with it; nothing
is sent (and the database is not opened) without the document, the registration or an active secret."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from requests_oauthlib import OAuth1

import endpoint.provisioning.hand_over_key as module
from models import ConsumerSecret, db
from models.db import utcnow
from simulators.controller.server import ControllerServer
from simulators.forward_proxy import ForwardProxy
from tests.endpoint.provisioning.conftest import Run, read
from tests.support.simulator_processes import Tls, make_tls

TOKEN = "aps-token-for-provider-staff"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("hand-over-tls"))


@pytest.fixture
def controller(tls: Tls) -> Iterator[ControllerServer]:
    server = ControllerServer(tls=(tls.cert_pem, tls.key_pem), token=TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def registered(initialized: Path, action: Run, controller: ControllerServer, tls: Tls) -> Path:
    argv = ["--controller", controller.url, "--ca-bundle", tls.ca_pem]
    assert action("register", *argv, environ={"APS_TOKEN": TOKEN}) == 0
    return initialized


def signed_by_controller_verifies(controller: ControllerServer, tls: Tls, key: str, secret: str) -> bool:
    """A call signed with ``secret``, as the connector signs its calls back to the controller."""
    response = requests.get(
        controller.url + "aps/2/resources",
        auth=OAuth1(key, client_secret=secret),
        verify=tls.ca_pem,
        timeout=5,
    )
    return response.status_code == 200


def test_the_rotated_secret_reaches_the_controller(
    registered: Path,
    action: Run,
    controller: ControllerServer,
    tls: Tls,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = read(registered)["aps"]["auth"]["oauth"]
    assert action("rotate-key") == 0
    new = read(registered)["aps"]["auth"]["oauth"]
    assert "connector hand-over-key --instance-json" in capsys.readouterr().out
    proxy = ForwardProxy().start()
    try:
        status = action(
            "hand-over-key",
            "--ca-bundle",
            tls.ca_pem,
            "--set",
            f"proxy.url={proxy.url}",
            environ={"APS_TOKEN": TOKEN},
        )
    finally:
        proxy.stop()
    assert status == 0
    out = capsys.readouterr().out
    assert "now holds secret #2" in out and new["secret"] not in out
    [_, handed] = controller.received()
    instance_id = json.loads((registered.parent / "app_instance.json.registration.json").read_text())[
        "instance_id"
    ]
    assert (handed.method, handed.path, handed.status) == ("PUT", f"/aps/2/applications/{instance_id}", 200)
    assert handed.body["aps"]["auth"]["oauth"] == {"key": new["key"], "secret": "[redacted]"}
    assert [flow["method"] for flow in proxy.flows] == ["CONNECT"]  # through the egress proxy
    # The controller now verifies (and would sign) with the new secret, no longer the old one.
    assert signed_by_controller_verifies(controller, tls, new["key"], new["secret"])
    assert not signed_by_controller_verifies(controller, tls, old["key"], old["secret"])


def test_without_the_document_nothing_is_sent_and_the_database_is_not_opened(
    registered: Path,
    action: Run,
    controller: ControllerServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def no_database(*args: object, **kwargs: object) -> None:
        raise AssertionError("the database was opened")

    monkeypatch.setattr(module, "init_database", no_database)
    registered.unlink()
    before = len(controller.received())
    assert action("hand-over-key", environ={"APS_TOKEN": TOKEN}) == 2
    err = capsys.readouterr().err
    assert "no instance document there" in err and err.count("\n") == 1
    assert len(controller.received()) == before


def test_without_a_registration_it_asks_for_controller_and_instance(
    initialized: Path, action: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    assert action("hand-over-key", environ={"APS_TOKEN": TOKEN}) == 2
    assert "pass --controller and --instance-id" in capsys.readouterr().err


def test_a_secret_the_endpoint_no_longer_accepts_is_never_handed_over(
    registered: Path, action: Run, controller: ControllerServer, tls: Tls, capsys: pytest.CaptureFixture[str]
) -> None:
    with db.connection_context():
        ConsumerSecret.update(not_after=utcnow() - dt.timedelta(seconds=1)).execute()
    before = len(controller.received())
    argv = ["hand-over-key", "--ca-bundle", tls.ca_pem]
    assert action(*argv, environ={"APS_TOKEN": TOKEN}) == 2
    assert "has ended: run rotate-key" in capsys.readouterr().err
    document = read(registered)
    document["aps"]["auth"]["oauth"]["secret"] = "not-a-secret-we-issued"
    registered.write_text(json.dumps(document))
    assert action(*argv, environ={"APS_TOKEN": TOKEN}) == 2
    assert "is not a secret of" in capsys.readouterr().err
    assert len(controller.received()) == before


def test_a_controller_that_does_not_know_the_instance(
    registered: Path, action: Run, controller: ControllerServer, tls: Tls, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["hand-over-key", "--ca-bundle", tls.ca_pem, "--instance-id", "not-registered-here"]
    assert action(*argv, environ={"APS_TOKEN": TOKEN}) == 1
    err = capsys.readouterr().err
    assert "does not take new credentials for instance not-registered-here (HTTP 404" in err
