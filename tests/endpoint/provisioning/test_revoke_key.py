"""revoke-key: ends a secret at once; refuses the last one unless forced; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from models import ConsumerSecret, db
from models.db import utcnow
from tests.endpoint.provisioning.conftest import Run


def test_revoking_needs_another_active_secret(
    initialized: Path, action: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    assert action("revoke-key", "--secret-id", "1", instance_json=False) == 2
    assert "last active secret" in capsys.readouterr().err
    assert action("rotate-key") == 0
    assert action("revoke-key", "--secret-id", "1", instance_json=False) == 0
    assert "secret #1 revoked" in capsys.readouterr().out
    with db.connection_context():
        assert ConsumerSecret.get_by_id(1).not_after <= utcnow()


def test_force_and_unknown_ids(initialized: Path, action: Run, capsys: pytest.CaptureFixture[str]) -> None:
    assert action("revoke-key", "--secret-id", "99", instance_json=False) == 2
    assert "does not belong" in capsys.readouterr().err
    assert action("revoke-key", "--secret-id", "1", "--force", instance_json=False) == 0
