"""Consumer key/secret generation, the instance document and its owner-only atomic write."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import peewee as pw
import pytest

from endpoint.auth.oauth_params import KEY_PATTERN
from endpoint.provisioning.instance import (
    ConsumerCredentials,
    PackageInfo,
    check_not_replacing,
    ensure_consumer,
    generate_key,
    generate_secret,
    instance_document,
    read_instance_document,
    write_instance_document,
)
from models import Consumer, ConsumerSecret


def test_keys_match_the_controller_format_and_the_verifier() -> None:
    key = generate_key("acme")
    assert re.fullmatch(r"acme-[0-9a-f]{32}", key) and KEY_PATTERN.fullmatch(key)
    with pytest.raises(ValueError):
        generate_key("bad prefix!")


def test_secrets_are_long_and_unique() -> None:
    values = {generate_secret() for _ in range(50)}
    assert len(values) == 50 and all(len(v) >= 43 for v in values)


def test_consumer_is_created_once(database: pw.Database) -> None:
    first = ensure_consumer("acme")
    again = ensure_consumer("acme")
    assert first.created and not again.created
    assert (first.key, first.secret) == (again.key, again.secret)
    assert Consumer.select().count() == 1 and ConsumerSecret.select().count() == 1


def test_credentials_never_show_the_secret() -> None:
    credentials = ConsumerCredentials("k-12345678", "super-secret-value", True)
    assert "super-secret-value" not in repr(credentials)


def test_document_shape() -> None:
    credentials = ConsumerCredentials("k-12345678", "s", False)
    doc = instance_document("https://c.example.com/x", credentials, PackageInfo(), {"app": {"hubID": "h"}})
    assert doc["aps"]["endpoint"] == "https://c.example.com/x" and doc["aps"]["network"] == "proxy"
    assert doc["aps"]["auth"]["oauth"] == {"key": "k-12345678", "secret": "s"} and doc["app"] == {
        "hubID": "h"
    }


def test_write_is_owner_only_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "var" / "app_instance.json"
    write_instance_document(path, {"aps": {}})
    write_instance_document(path, {"aps": {"endpoint": "x"}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"aps": {"endpoint": "x"}}
    assert [p.name for p in path.parent.iterdir()] == ["app_instance.json"]  # no temp files left


def test_check_not_replacing(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    credentials = ConsumerCredentials("mine-12345678", "s", False)
    check_not_replacing(path, credentials)  # no file yet
    write_instance_document(path, {"aps": {"auth": {"oauth": {"key": "mine-12345678"}}}})
    check_not_replacing(path, credentials)
    write_instance_document(path, {"aps": {"auth": {"oauth": {"key": "theirs-1234567"}}}})
    with pytest.raises(ValueError, match="theirs-1234567"):
        check_not_replacing(path, credentials)


def test_read_rejects_non_objects(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    assert read_instance_document(path) is None
    path.write_text("[]")
    with pytest.raises(ValueError):
        read_instance_document(path)
