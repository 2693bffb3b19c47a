"""The Acronis identity provider's RSA signing keys as the simulator keeps them: rotatable, served as a JWKS.

One key signs (the newest); the JWKS publishes every key still kept, so tokens signed before a rotation keep
verifying for a while (Acronis rotates every 24 h). A key can also be *withheld*: it signs, but the JWKS does
not list it -- the "unknown kid" a verifier must refetch for and then reject.

With a directory the ring lives on disk, so the gateway simulator (another process) signs with the very keys
the JWKS publishes: ``keyring.json`` names the keys, newest first, and each private key is ``<kid>.pem``
(PKCS#8). The directory is 0700 and every file 0600; the manifest is replaced atomically after the key files
are written, so a reader never sees a kid without its key. Only the Acronis API simulator writes the ring.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

MANIFEST = "keyring.json"
KEY_BITS = 2048


@dataclass(frozen=True, slots=True)
class RingKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    published: bool
    created: float

    def __repr__(self) -> str:
        return f"RingKey(kid={self.kid!r}, published={self.published}, created={self.created})"

    def jwk(self) -> dict[str, Any]:
        """The public half as the Acronis JWKS lists it: use, kty, kid, alg, n, e."""
        public = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {
            "use": "sig",
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "n": public["n"],
            "e": public["e"],
        }

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def new_key(*, published: bool = True, clock: Callable[[], float] = time.time) -> RingKey:
    """A fresh RSA key with a random kid (the docs' kids are UUIDs)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    return RingKey(str(uuid.uuid4()), private, published, clock())


class KeyRing:
    """Newest key first; it signs. Thread-safe. Without a directory: in memory, first key made on demand."""

    def __init__(self, directory: Path | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.clock = clock
        self._keys: list[RingKey] = []
        self._lock = threading.Lock()

    @classmethod
    def open(cls, directory: Path, *, clock: Callable[[], float] = time.time) -> KeyRing:
        """The ring kept in ``directory``: loaded when present, else created with one published key.

        :raise ValueError: the directory holds a broken ring.
        """
        ring = cls(directory, clock=clock)
        if (directory / MANIFEST).exists():
            ring._keys = load_keys(directory)
        else:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(directory, 0o700)
            with ring._lock:
                ring._keys = [new_key(clock=clock)]
                ring._save()
        return ring

    def signing_key(self) -> RingKey:
        with self._lock:
            self._ensure_one()
            return self._keys[0]

    def keys(self) -> list[RingKey]:
        with self._lock:
            self._ensure_one()
            return list(self._keys)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in self.keys() if key.published]}

    def rotate(self, *, publish: bool = True, keep: int = 1) -> RingKey:
        """A new signing key; the ``keep`` newest older keys stay (published or not), the rest are retired.

        ``publish=False`` withholds the new key from the JWKS (the "unknown kid" fault).
        :raise ValueError: ``keep`` is negative.
        """
        if keep < 0:
            raise ValueError("keep must be 0 or more")
        key = new_key(published=publish, clock=self.clock)
        with self._lock:
            self._ensure_one()
            retired = self._keys[keep:]
            self._keys = [key, *self._keys[:keep]]
            self._save()
            self._delete(retired)
        return key

    def publish(self) -> list[str]:
        """Publish every withheld key (ends the "unknown kid" fault); returns their kids."""
        with self._lock:
            withheld = [key.kid for key in self._keys if not key.published]
            self._keys = [RingKey(k.kid, k.private_key, True, k.created) for k in self._keys]
            if withheld:
                self._save()
        return withheld

    def status(self) -> dict[str, Any]:
        """What the ring holds, without any private material."""
        keys = self.keys()
        return {
            "signing_kid": keys[0].kid,
            "published": [key.kid for key in keys if key.published],
            "withheld": [key.kid for key in keys if not key.published],
            "directory": str(self.directory) if self.directory else None,
        }

    def _ensure_one(self) -> None:
        if not self._keys:  # an in-memory ring makes its first key when first needed (RSA takes a while)
            self._keys = [new_key(clock=self.clock)]
            self._save()

    def _save(self) -> None:
        if self.directory is None:
            return
        for key in self._keys:
            path = self.directory / f"{key.kid}.pem"
            if not path.exists():
                _write_private(path, _pem(key.private_key))
        manifest = {
            "signing": self._keys[0].kid,
            "keys": [{"kid": k.kid, "published": k.published, "created": k.created} for k in self._keys],
        }
        staging = self.directory / f".{MANIFEST}.{os.getpid()}.tmp"
        staging.unlink(missing_ok=True)
        _write_private(staging, (json.dumps(manifest, indent=2) + "\n").encode())
        os.replace(staging, self.directory / MANIFEST)

    def _delete(self, retired: list[RingKey]) -> None:
        if self.directory is not None:
            for key in retired:
                (self.directory / f"{key.kid}.pem").unlink(missing_ok=True)


def load_keys(directory: Path) -> list[RingKey]:
    """The keys a ring directory holds, newest (signing) first.

    :raise ValueError: no ring there, or a listed key is missing or unreadable.
    """
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        entries = manifest["keys"]
        keys = []
        for entry in entries:
            pem = (directory / f"{entry['kid']}.pem").read_bytes()
            private = serialization.load_pem_private_key(pem, None)
            if not isinstance(private, rsa.RSAPrivateKey):
                raise ValueError(f"{entry['kid']}.pem is not an RSA key")
            keys.append(RingKey(entry["kid"], private, bool(entry["published"]), float(entry["created"])))
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{directory}: not a readable key ring ({type(e).__name__}: {e})") from e
    if not keys:
        raise ValueError(f"{directory}: the key ring is empty")
    return keys


def _pem(private: rsa.RSAPrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
