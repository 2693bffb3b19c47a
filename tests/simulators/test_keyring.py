"""The simulator's key ring: owner-only files, rotation with overlap, withheld keys, a second reader."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import jwt
import pytest

from simulators.keyring import MANIFEST, KeyRing, load_keys


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_ring_on_disk_is_owner_only_and_publishes_its_key(tmp_path: Path) -> None:
    ring = KeyRing.open(tmp_path / "keys")
    key = ring.signing_key()
    assert mode(tmp_path / "keys") == 0o700
    assert {p.name for p in (tmp_path / "keys").iterdir()} == {MANIFEST, f"{key.kid}.pem"}
    assert all(mode(p) == 0o600 for p in (tmp_path / "keys").iterdir())
    (jwk,) = ring.jwks()["keys"]
    assert list(jwk) == ["use", "kty", "kid", "alg", "n", "e"]
    assert (jwk["use"], jwk["kty"], jwk["kid"], jwk["alg"], jwk["e"]) == (
        "sig",
        "RSA",
        key.kid,
        "RS256",
        "AQAB",
    )
    assert "d" not in jwk and "PRIVATE" not in json.dumps(ring.status())


def test_a_token_signed_with_the_ring_verifies_with_its_jwks(tmp_path: Path) -> None:
    ring = KeyRing.open(tmp_path)
    key = ring.signing_key()
    token = jwt.encode({"sub": "x"}, key.private_key, algorithm="RS256", headers={"kid": key.kid})
    public = jwt.PyJWKSet.from_dict(ring.jwks())[key.kid].key
    assert jwt.decode(token, public, algorithms=["RS256"]) == {"sub": "x"}


def test_reopening_and_a_second_reader_see_the_same_keys(tmp_path: Path) -> None:
    ring = KeyRing.open(tmp_path)
    ring.rotate()
    again = KeyRing.open(tmp_path)
    assert [k.kid for k in again.keys()] == [k.kid for k in ring.keys()]
    assert [k.kid for k in load_keys(tmp_path)] == [k.kid for k in ring.keys()]
    assert (
        load_keys(tmp_path)[0].private_key.private_numbers()
        == ring.signing_key().private_key.private_numbers()
    )


def test_rotation_keeps_the_newest_older_keys_and_deletes_the_rest(tmp_path: Path) -> None:
    ring = KeyRing.open(tmp_path)
    first = ring.signing_key().kid
    second = ring.rotate().kid
    assert ring.signing_key().kid == second
    assert [k["kid"] for k in ring.jwks()["keys"]] == [second, first]  # overlap: old tokens still verify
    third = ring.rotate(keep=0).kid
    assert [k["kid"] for k in ring.jwks()["keys"]] == [third]
    assert sorted(p.name for p in tmp_path.glob("*.pem")) == [f"{third}.pem"]


def test_a_withheld_key_signs_but_is_not_listed_until_published(tmp_path: Path) -> None:
    ring = KeyRing.open(tmp_path)
    old = ring.signing_key().kid
    withheld = ring.rotate(publish=False).kid
    assert ring.signing_key().kid == withheld
    assert [k["kid"] for k in ring.jwks()["keys"]] == [old]
    assert ring.status()["withheld"] == [withheld]
    assert load_keys(tmp_path)[0].published is False  # the gateway CLI signs with it all the same
    assert ring.publish() == [withheld] and ring.publish() == []
    assert [k["kid"] for k in ring.jwks()["keys"]] == [withheld, old]
    assert load_keys(tmp_path)[0].published is True


def test_an_in_memory_ring_makes_its_first_key_on_demand() -> None:
    ring = KeyRing()
    assert ring.status()["directory"] is None and len(ring.jwks()["keys"]) == 1
    with pytest.raises(ValueError, match="keep"):
        ring.rotate(keep=-1)


def test_a_broken_ring_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a readable key ring"):
        load_keys(tmp_path)
    ring = KeyRing.open(tmp_path)
    (tmp_path / f"{ring.signing_key().kid}.pem").unlink()
    with pytest.raises(ValueError, match="not a readable key ring"):
        KeyRing.open(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({"signing": None, "keys": []}))
    with pytest.raises(ValueError, match="empty"):
        load_keys(tmp_path)
