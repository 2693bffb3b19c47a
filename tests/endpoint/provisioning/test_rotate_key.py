"""rotate-key: the document gets the new secret; over HTTP both secrets work during the overlap, then not."""

from __future__ import annotations

import datetime as dt
import json
import stat
import time
import uuid
from pathlib import Path

import pytest

from endpoint.aps.settings import ApsSettings
from models import ConsumerSecret, db
from models.db import DatabaseSettings, init_database, utcnow
from tests.endpoint.provisioning.conftest import Run, read
from tests.support.aps_builders import APP_TYPE, CONTROLLER_URI, FAST
from tests.support.builders import make_settings
from tests.support.live_endpoint import LiveEndpoint, live_endpoint


def test_rotation_rewrites_the_document_and_keeps_the_old_secret_for_the_overlap(
    initialized: Path, action: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    old = read(initialized)["aps"]["auth"]["oauth"]
    capsys.readouterr()
    assert action("rotate-key", "--overlap-hours", "2") == 0
    new = read(initialized)["aps"]["auth"]["oauth"]
    assert new["key"] == old["key"] and new["secret"] != old["secret"]
    assert stat.S_IMODE(initialized.stat().st_mode) == 0o600
    out = capsys.readouterr().out
    assert "new secret #2" in out and "secret #1 keeps working until" in out
    assert old["secret"] not in out and new["secret"] not in out
    with db.connection_context():
        ends = {row.id: row.not_after for row in ConsumerSecret.select()}
    assert ends[2] is None and dt.timedelta(hours=1.9) < ends[1] - utcnow() <= dt.timedelta(hours=2)


def test_a_document_of_another_key_is_refused(initialized: Path, action: Run) -> None:
    document = read(initialized)
    document["aps"]["auth"]["oauth"]["key"] = "someone-else-0000"
    initialized.write_text(json.dumps(document))
    assert action("rotate-key") == 2


def test_without_the_instance_document_nothing_is_rotated(
    initialized: Path, action: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new secret no document carries would be one nobody holds, while the held one runs out."""
    initialized.unlink()
    with db.connection_context():
        before = ConsumerSecret.select().count()
    assert action("rotate-key") == 2
    err = capsys.readouterr().err
    assert "no instance document there" in err and err.count("\n") == 1
    with db.connection_context():
        assert ConsumerSecret.select().count() == before


REFRESH = 0.1  # endpoint.secrets_refresh: how long a key change takes to reach the serving process


def signed_get(live: LiveEndpoint, key: str, secret: str, instance_id: str, expected: int = 200) -> int:
    """The status of a signed GET, asked again (bounded) until it is ``expected``: key changes reach the
    serving process within endpoint.secrets_refresh, not at once."""
    headers = {"APS-Instance-ID": instance_id, "APS-Controller-URI": CONTROLLER_URI}
    deadline = time.monotonic() + 20 * REFRESH
    while True:
        status = live.signed(
            "GET", f"/app/{instance_id}", headers=headers, key=key, secret=secret
        ).status_code
        if status == expected or time.monotonic() > deadline:
            return status
        time.sleep(REFRESH / 4)


def test_over_http_both_secrets_verify_during_the_overlap_and_ended_ones_get_401(
    initialized: Path, action: Run, db_settings: DatabaseSettings
) -> None:
    old = read(initialized)["aps"]["auth"]["oauth"]
    instance_id = str(uuid.uuid4())
    settings = make_settings(
        database=db_settings, aps=ApsSettings(**FAST), endpoint={"secrets_refresh": REFRESH}
    )
    init_database(db_settings)
    with live_endpoint(settings) as live:
        headers = {"APS-Instance-ID": instance_id, "APS-Controller-URI": CONTROLLER_URI}
        body = json.dumps({"aps": {"type": APP_TYPE, "id": instance_id}}).encode()
        created = live.signed(
            "POST", "/app", body=body, headers=headers, key=old["key"], secret=old["secret"]
        )
        assert created.status_code == 201, created.text
        assert action("rotate-key") == 0
        new = read(initialized)["aps"]["auth"]["oauth"]
        assert signed_get(live, old["key"], old["secret"], instance_id) == 200
        assert signed_get(live, new["key"], new["secret"], instance_id) == 200
        assert action("revoke-key", "--secret-id", "1", instance_json=False) == 0
        assert signed_get(live, old["key"], old["secret"], instance_id, 401) == 401
        assert signed_get(live, new["key"], new["secret"], instance_id) == 200
        assert action("rotate-key", "--overlap-hours", "1") == 0
        newest = read(initialized)["aps"]["auth"]["oauth"]
        with db.connection_context():  # the overlap of secret #2 runs out
            ConsumerSecret.update(not_after=utcnow() - dt.timedelta(seconds=1)).where(
                ConsumerSecret.id == 2
            ).execute()
        assert signed_get(live, new["key"], new["secret"], instance_id, 401) == 401
        assert signed_get(live, newest["key"], newest["secret"], instance_id) == 200
