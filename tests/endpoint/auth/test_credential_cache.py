"""VerifiedCredentialCache: HMAC keys over (user, password, hash), TTL, LRU bound (catalogue item 35)."""

from __future__ import annotations

import pytest

from endpoint.auth.credential_cache import VerifiedCredentialCache

HASH = "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_hit_only_for_the_exact_triple() -> None:
    cache = VerifiedCredentialCache(ttl=60, max_entries=10)
    assert cache.lookup("u1", "pw", HASH) is False  # nothing cached yet
    cache.remember("u1", "pw", HASH)
    assert cache.lookup("u1", "pw", HASH) is True
    assert cache.lookup("u1", "pW", HASH) is False
    assert cache.lookup("u2", "pw", HASH) is False
    # A password change, reset or rehash changes the stored hash: the old entry is unreachable at once.
    assert cache.lookup("u1", "pw", HASH + "x") is False


def test_fields_are_length_prefixed() -> None:
    cache = VerifiedCredentialCache(ttl=60, max_entries=10)
    cache.remember("ab", "c", HASH)
    assert cache.lookup("a", "bc", HASH) is False
    cache.remember("u", "pw" + HASH, "")
    assert cache.lookup("u", "pw", HASH) is False


def test_entries_expire_after_ttl() -> None:
    clock = FakeClock()
    cache = VerifiedCredentialCache(ttl=60, max_entries=10, clock=clock)
    cache.remember("u1", "pw", HASH)
    clock.now += 59.9
    assert cache.lookup("u1", "pw", HASH) is True
    clock.now += 0.1
    assert cache.lookup("u1", "pw", HASH) is False
    assert len(cache) == 0  # the expired entry was dropped when met


def test_lookup_does_not_extend_the_ttl() -> None:
    clock = FakeClock()
    cache = VerifiedCredentialCache(ttl=60, max_entries=10, clock=clock)
    cache.remember("u1", "pw", HASH)
    for _ in range(3):
        clock.now += 30
        cache.lookup("u1", "pw", HASH)
    assert cache.lookup("u1", "pw", HASH) is False


def test_bounded_lru() -> None:
    cache = VerifiedCredentialCache(ttl=60, max_entries=2)
    cache.remember("a", "pw", HASH)
    cache.remember("b", "pw", HASH)
    assert cache.lookup("a", "pw", HASH)  # a is now the most recently used
    cache.remember("c", "pw", HASH)
    assert len(cache) == 2
    assert cache.lookup("a", "pw", HASH) and cache.lookup("c", "pw", HASH)
    assert cache.lookup("b", "pw", HASH) is False


def test_many_entries_stay_within_the_bound() -> None:
    cache = VerifiedCredentialCache(ttl=60, max_entries=100)
    for i in range(1000):
        cache.remember(f"user-{i}", "pw", HASH)
    assert len(cache) == 100


def test_zero_ttl_disables_caching() -> None:
    cache = VerifiedCredentialCache(ttl=0, max_entries=10)
    cache.remember("u1", "pw", HASH)
    assert cache.lookup("u1", "pw", HASH) is False


def test_no_plaintext_is_stored() -> None:
    cache = VerifiedCredentialCache(ttl=60, max_entries=10)
    password = "plaintext-marker-Ω"
    cache.remember("u1", password, HASH)
    # White-box on purpose: the stored keys must be fixed-size MACs, not anything derived reversibly.
    stored = list(cache._entries)
    assert all(len(key) == 32 for key in stored)
    assert all(password.encode() not in key and b"u1" not in key for key in stored)


def test_keys_are_per_process_secrets() -> None:
    one = VerifiedCredentialCache(ttl=60, max_entries=10)
    two = VerifiedCredentialCache(ttl=60, max_entries=10)
    one.remember("u1", "pw", HASH)
    two.remember("u1", "pw", HASH)
    assert list(one._entries) != list(two._entries)  # a fresh random HMAC key per instance


def test_rejects_a_non_positive_bound() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        VerifiedCredentialCache(ttl=60, max_entries=0)
