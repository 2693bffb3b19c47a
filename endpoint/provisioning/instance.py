"""The OAuth consumer of the application instance and the instance document providers register.

The document (aps.md §7) carries the live consumer secret, so it is written only to a git-ignored path
with owner-only permissions, atomically, and never logged; the tracked app_instance.json is a template.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models import Consumer, ConsumerSecret
from models.db import db, utcnow

PRIMARY_LABEL = "primary"
_PREFIX = re.compile(r"[A-Za-z0-9]{1,40}")


@dataclass(frozen=True, slots=True)
class PackageInfo:
    type: str = "http://vendor.example.com/acronis-connector/1.0"
    version: str = "1.0"
    release: str = "1"


@dataclass(frozen=True, slots=True)
class ConsumerCredentials:
    key: str
    secret: str
    created: bool

    def __repr__(self) -> str:  # the secret never reaches a log or a traceback
        return f"ConsumerCredentials(key={self.key!r}, secret='***', created={self.created})"


def generate_key(prefix: str) -> str:
    """``<prefix>-<32 hex>``: the controller's key format (letters, digits, '-')."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError("key prefix: 1-40 letters or digits")
    return f"{prefix}-{secrets.token_hex(16)}"


def generate_secret() -> str:
    """32 random bytes (256 bits), URL-safe text (RFC 5849 §4.9: secrets need entropy)."""
    return secrets.token_urlsafe(32)


def ensure_consumer(prefix: str) -> ConsumerCredentials:
    """The primary consumer and its newest active secret; created (key and secret) only when absent."""
    with db.atomic():
        consumer = Consumer.get_or_none(Consumer.label == PRIMARY_LABEL)
        if consumer is not None:
            active = Consumer.active_secrets(consumer.key, utcnow())
            if not active:
                raise ValueError(f"consumer {consumer.key} has no active secret; run rotate-key")
            return ConsumerCredentials(consumer.key, active[0][1], created=False)
        consumer = Consumer.create(key=generate_key(prefix), label=PRIMARY_LABEL)
        secret = generate_secret()
        ConsumerSecret.create(consumer=consumer, secret=secret)
        return ConsumerCredentials(consumer.key, secret, created=True)


def instance_document(
    public_url: str, credentials: ConsumerCredentials, package: PackageInfo, app_settings: dict[str, Any]
) -> dict[str, Any]:
    """The body of ``POST /aps/2/applications``; ``aps.endpoint`` is byte-identical to the public URL."""
    return {
        "aps": {
            "package": {"type": package.type, "version": package.version, "release": package.release},
            "endpoint": public_url,
            "network": "proxy",
            "auth": {"oauth": {"key": credentials.key, "secret": credentials.secret}},
        },
        **app_settings,
    }


def read_instance_document(path: Path) -> dict[str, Any] | None:
    try:
        with path.open(encoding="utf-8") as fh:
            document = json.load(fh)
    except FileNotFoundError:
        return None
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not a JSON object")
    return document


def check_not_replacing(path: Path, credentials: ConsumerCredentials) -> None:
    """:raise ValueError: the existing document holds another key (bootstrap never replaces keys silently)."""
    existing = read_instance_document(path)
    if existing is None:
        return
    key = existing.get("aps", {}).get("auth", {}).get("oauth", {}).get("key")
    if key not in (None, credentials.key):
        raise ValueError(
            f"{path} holds consumer key {key!r} but the database's primary consumer is {credentials.key!r}; "
            "move the file away or point --db at the database it belongs to"
        )


def check_instance_directory(path: Path) -> None:
    """:raise ValueError: neither the document's directory nor the one above it exists.

    One missing level (``var/`` in a fresh checkout) is created on write; a whole missing tree is a
    mistyped path, and creating it (at the filesystem root, say) would hide the mistake.
    """
    parent = path.absolute().parent
    if not parent.is_dir() and not parent.parent.is_dir():
        raise ValueError(f"--instance-json: directory {parent} does not exist; create it or fix the path")


def write_instance_document(path: Path, document: dict[str, Any]) -> None:
    """Write atomically with mode 0600 (the file holds a live secret); the directory gets 0700 if new."""
    check_instance_directory(path)
    path.parent.mkdir(exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".app_instance.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)
