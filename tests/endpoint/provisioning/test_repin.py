"""repin-controller: a deliberate move of an instance to a new controller URI, allowlist enforced."""

from __future__ import annotations

from pathlib import Path

import pytest

from models import ApsInstance, db
from tests.endpoint.provisioning.conftest import Run
from tests.support.aps_builders import CONTROLLER_URI, INSTANCE_ID, bound_instance

NEW = "https://APSC2.example.net:6308"


def pinned() -> str:
    with db.connection_context():
        return ApsInstance.get(ApsInstance.instance_id == INSTANCE_ID).controller_uri


@pytest.fixture
def instance(initialized: Path) -> None:
    with db.connection_context():
        bound_instance()


def repin(action: Run, *extra: str, uri: str = NEW, instance_id: str = INSTANCE_ID) -> int:
    return action(
        "repin-controller", "--instance-id", instance_id, "--controller-uri", uri, *extra, instance_json=False
    )


def test_the_new_uri_is_normalized_and_pinned(
    instance: None, action: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    assert repin(action) == 0
    assert pinned() == "https://apsc2.example.net:6308/"
    assert f"controller {CONTROLLER_URI} -> https://apsc2.example.net:6308/" in capsys.readouterr().out
    assert repin(action) == 0  # idempotent
    assert "already pinned" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "uri", "instance_id", "reason"),
    [
        (
            ["--set", "aps.controller_allowlist=https://apsc.example.net:6308/*"],
            NEW,
            INSTANCE_ID,
            "allowlist",
        ),
        ([], "http://apsc2.example.net/", INSTANCE_ID, "must be https://"),
        ([], "https://user:pw@apsc2.example.net/", INSTANCE_ID, "credentials"),
        ([], NEW, "not-a-uuid", "must be a UUID"),
        ([], NEW, "11111111-2222-4333-8444-555555555555", "no active APS instance"),
    ],
)
def test_refusals_change_nothing(
    instance: None,
    action: Run,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    uri: str,
    instance_id: str,
    reason: str,
) -> None:
    assert repin(action, *extra, uri=uri, instance_id=instance_id) == 2
    err = capsys.readouterr().err
    assert reason in err and err.count("\n") == 1
    assert pinned() == CONTROLLER_URI
