"""register: POST the document to <controller>/aps/2/applications; TLS verified; clear refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.controller.server import ControllerServer
from simulators.forward_proxy import ForwardProxy
from tests.endpoint.provisioning.conftest import Run, read
from tests.support.simulator_processes import Tls, make_tls

TOKEN = "aps-token-for-provider-staff"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("register-tls"))


@pytest.fixture
def controller(tls: Tls) -> Iterator[ControllerServer]:
    server = ControllerServer(tls=(tls.cert_pem, tls.key_pem), token=TOKEN).start()
    yield server
    server.stop()


def test_registration_posts_the_document_and_stores_the_instance_id(
    initialized: Path, action: Run, controller: ControllerServer, tls: Tls, capsys: pytest.CaptureFixture[str]
) -> None:
    proxy = ForwardProxy().start()
    try:
        status = action(
            "register",
            "--controller",
            controller.url,
            "--ca-bundle",
            tls.ca_pem,
            "--set",
            f"proxy.url={proxy.url}",
            environ={"APS_TOKEN": TOKEN},
        )
    finally:
        proxy.stop()
    assert status == 0
    [received] = controller.received()
    assert (received.method, received.path, received.verified) == ("POST", "/aps/2/applications", True)
    assert received.body == read(initialized)
    record = json.loads((initialized.parent / "app_instance.json.registration.json").read_text())
    assert record["controller"] == controller.url and record["instance_id"] in controller.state.applications
    assert record["instance_id"] in capsys.readouterr().out
    assert [flow["method"] for flow in proxy.flows] == ["CONNECT"]  # through the egress proxy


def test_a_refusal_shows_the_controllers_message(
    initialized: Path, action: Run, controller: ControllerServer, tls: Tls, capsys: pytest.CaptureFixture[str]
) -> None:
    status = action(
        "register", "--controller", controller.url, "--ca-bundle", tls.ca_pem, environ={"APS_TOKEN": "nope"}
    )
    assert status == 1
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "Unauthorized: bad APS-Token" in err and "nope" not in err


def test_a_staff_oauth_key_instead_of_a_token(
    initialized: Path, action: Run, controller: ControllerServer, tls: Tls
) -> None:
    controller.trust("staff-key-0001", "staff-secret-0001")
    argv = ["--controller", controller.url, "--ca-bundle", tls.ca_pem, "--oauth-key", "staff-key-0001"]
    assert (
        action("register", *argv, "--oauth-secret-env", "STAFF", environ={"STAFF": "staff-secret-0001"}) == 0
    )
    [received] = controller.received()
    assert received.verified and received.key == "staff-key-0001"


def test_tls_verification_stays_on(initialized: Path, action: Run, controller: ControllerServer) -> None:
    assert action("register", "--controller", controller.url, environ={"APS_TOKEN": TOKEN}) == 3
    assert controller.received() == []


@pytest.mark.parametrize(
    ("extra", "environ"),
    [
        (
            ["--controller", "http://127.0.0.1:1/"],
            {"APS_TOKEN": TOKEN},
        ),  # plain http outside development mode
        (["--controller", "https://127.0.0.1:1/"], {}),  # no credentials
        (
            ["--controller", "https://127.0.0.1:1/", "--oauth-key", "staff-key-1"],
            {},
        ),  # OAuth without a secret
    ],
)
def test_bad_invocations_are_refused_before_any_call(
    initialized: Path, action: Run, extra: list[str], environ: dict[str, str]
) -> None:
    assert action("register", *extra, environ=environ) == 2


def test_without_a_document(workdir: Path, action: Run, capsys: pytest.CaptureFixture[str]) -> None:
    assert action("register", "--controller", "https://127.0.0.1:1/", environ={"APS_TOKEN": TOKEN}) == 2
    assert "run bootstrap.py init first" in capsys.readouterr().err
