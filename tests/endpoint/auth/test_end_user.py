"""EndUserStage end to end on a real database (catalogue items 33-36, 45; callbacks §12 rows 16, 18)."""

from __future__ import annotations

import asyncio
import logging
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import argon2
import peewee as pw
import pytest
from playhouse.test_utils import count_queries

from endpoint.auth.credential_cache import VerifiedCredentialCache
from endpoint.auth.end_user import EndUserStage
from endpoint.auth.identity import AuthenticatedUser
from endpoint.auth.passwords import PasswordService
from endpoint.auth.throttle import LoginThrottle
from endpoint.config.sections import AuthSettings
from endpoint.errors import AuthenticationFailed, TooManyRequests
from endpoint.work.executors import DatabaseRunner
from models import Organization, User
from tests.support.builders import FAST_ARGON2, create_org, create_user, cyberapp_auth, fast_hasher

IP = "203.0.113.7"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingPasswords(PasswordService):
    """The real service, counting calls; verifies optionally wait on ``gate`` inside the worker."""

    def __init__(self, settings: AuthSettings) -> None:
        super().__init__(settings)
        self.calls = {"verify": 0, "dummy_verify": 0, "hash": 0}
        self.gate: threading.Event | None = None

    async def verify(self, stored_hash: str, password: str) -> bool:
        self.calls["verify"] += 1
        return await super().verify(stored_hash, password)

    async def dummy_verify(self, password: str) -> None:
        self.calls["dummy_verify"] += 1
        await super().dummy_verify(password)

    async def hash(self, password: str) -> str:
        self.calls["hash"] += 1
        return await super().hash(password)

    def _verify_blocking(self, stored_hash: str, password: str) -> bool:
        if self.gate is not None:
            assert self.gate.wait(10), "test gate never opened"
        return super()._verify_blocking(stored_hash, password)


class Rig:
    """An authenticator wired like production, with a fake clock for the cache and the throttles."""

    def __init__(self, runner: DatabaseRunner, **auth: Any) -> None:
        self.settings = AuthSettings(**{**FAST_ARGON2, **auth})
        self.clock = FakeClock()
        self.passwords = CountingPasswords(self.settings)
        self.cache = VerifiedCredentialCache(self.settings.cache_ttl, self.settings.cache_size, self.clock)
        s = self.settings
        self.throttle = LoginThrottle(
            identity_limit=s.failure_limit,
            pair_limit=s.pair_failure_limit,
            client_soft_limit=s.client_failure_soft_limit,
            window=s.failure_window,
            max_delay=s.failure_max_delay,
            clock=self.clock,
        )
        self.runner = runner
        self.stage = EndUserStage(s, runner, self.passwords, self.cache, self.throttle)

    async def authenticate(self, header: str, ip: str) -> AuthenticatedUser:
        """The three steps as the callback handler runs them: attempt, one unit of work, argon2 if cold."""
        attempt = self.stage.attempt(header, ip)

        def unit() -> tuple[Any, AuthenticatedUser | None]:
            account = self.stage.lookup(attempt)
            return account, self.stage.from_cache(attempt, account)

        account, user = await self.runner.run(unit)
        return user if user is not None else await self.stage.verify(attempt, account)

    def login(self, identity: str, password: str, ip: str = IP) -> AuthenticatedUser:
        return asyncio.run(self.authenticate(cyberapp_auth(identity, password), ip))

    def refused(self, identity: str, password: str, ip: str = IP) -> type[Exception]:
        """The exception class a login raises (it must raise)."""
        with pytest.raises((AuthenticationFailed, TooManyRequests)) as info:
            self.login(identity, password, ip)
        return type(info.value)


@pytest.fixture
def runner(database: pw.Database) -> Iterator[DatabaseRunner]:
    db_runner = DatabaseRunner(threads=2)
    yield db_runner
    db_runner.shutdown()


@pytest.fixture
def rigs(runner: DatabaseRunner) -> Iterator[list[Rig]]:
    made: list[Rig] = []
    yield made
    for rig in made:
        if rig.passwords.gate is not None:
            rig.passwords.gate.set()
        rig.passwords.shutdown()


@pytest.fixture
def make_rig(runner: DatabaseRunner, rigs: list[Rig]) -> Any:
    def make(**auth: Any) -> Rig:
        rig = Rig(runner, **auth)
        rigs.append(rig)
        return rig

    return make


@pytest.fixture
def org() -> Organization:
    return create_org("Acme")


def test_success_returns_the_user_and_acting_org(make_rig: Any, org: Organization) -> None:
    user = create_user("jdoe", org, "s3cret")
    assert make_rig().login("jdoe", "s3cret") == AuthenticatedUser(
        user_id=user.id, login="jdoe", organization_id=org.id, organization_kind="partner"
    )


def test_mixed_case_login_authenticates(make_rig: Any, org: Organization) -> None:
    create_user("Alice.Smith", org, "s3cret")  # stored normalized: alice.smith
    rig = make_rig()
    assert rig.login("ALICE.smith", "s3cret").login == "alice.smith"
    assert rig.login("Alice.Smith", "s3cret").login == "alice.smith"


def test_non_ascii_password_authenticates(make_rig: Any, org: Organization) -> None:
    create_user("jörg", org, "pässwörd-€-🔑")
    assert make_rig().login("JÖRG", "pässwörd-€-🔑").login == "jörg"


def test_malformed_header_is_401_without_argon2(make_rig: Any, caplog: pytest.LogCaptureFixture) -> None:
    rig = make_rig()
    with caplog.at_level(logging.INFO, logger="endpoint.auth.end_user"):
        with pytest.raises(AuthenticationFailed, match="no ':' separator"):
            asyncio.run(rig.authenticate("amRvZQ==", IP))  # base64("jdoe")
    assert "no ':' separator" in caplog.text and "amRvZQ==" not in caplog.text
    assert rig.passwords.calls == {"verify": 0, "dummy_verify": 0, "hash": 0}


def test_wrong_password_and_unknown_user_look_the_same(
    make_rig: Any, org: Organization, caplog: pytest.LogCaptureFixture
) -> None:
    create_user("jdoe", org, "s3cret")
    rig = make_rig()
    errors = []
    with caplog.at_level(logging.INFO, logger="endpoint.auth.end_user"):
        for identity in ("jdoe", "nobody"):
            with pytest.raises(AuthenticationFailed) as info:
                rig.login(identity, "guess-Xq7")
            errors.append(info.value)
    assert errors[0].message == errors[1].message == "Authentication failed."
    assert rig.passwords.calls["verify"] == 1 and rig.passwords.calls["dummy_verify"] == 1
    # Reasons go to the log, with the login but never the password or the header.
    assert "wrong password (login 'jdoe'" in caplog.text and "unknown user (login 'nobody'" in caplog.text
    assert "guess-Xq7" not in caplog.text and cyberapp_auth("jdoe", "guess-Xq7") not in caplog.text
    # Each failure line is marked for the log's rejection sampler, by reason.
    marks = [getattr(r, "rejection", None) for r in caplog.records if r.name == "endpoint.auth.end_user"]
    assert marks == ["login wrong password", "login unknown user"]


def test_wrong_password_and_unknown_user_take_similar_time(make_rig: Any, org: Organization) -> None:
    realistic = dict(argon2_time_cost=2, argon2_memory_kib=16384, argon2_parallelism=1)
    hasher = argon2.PasswordHasher(time_cost=2, memory_cost=16384, parallelism=1)
    create_user("jdoe", org, "s3cret", hasher=hasher)
    rig = make_rig(failure_limit=100, pair_failure_limit=100, failure_max_delay=0, **realistic)

    def seconds(identity: str) -> float:
        start = time.perf_counter()
        rig.refused(identity, "wrong")
        return time.perf_counter() - start

    seconds("nobody")  # warm-up: the dummy hash, thread pools, connections
    # Interleaved, so a burst of load on a shared machine hits both series alike.
    samples = [(seconds("jdoe"), seconds("nobody")) for _ in range(9)]
    known = statistics.median(k for k, _ in samples)
    unknown = statistics.median(u for _, u in samples)
    assert 1 / 3 < unknown / known < 3, (known, unknown)


def test_cache_hit_skips_argon2(make_rig: Any, org: Organization) -> None:
    create_user("jdoe", org, "s3cret")
    rig = make_rig()
    rig.login("jdoe", "s3cret")
    with count_queries() as queries:
        for _ in range(3):
            rig.login("JDOE", "s3cret")
    assert rig.passwords.calls["verify"] == 1
    assert queries.count == 3  # but the user row is still read on every request
    rig.clock.now += rig.settings.cache_ttl
    rig.login("jdoe", "s3cret")
    assert rig.passwords.calls["verify"] == 2  # the entry expired


@pytest.mark.parametrize("new_password", ["n3w-password", None], ids=["changed", "cleared"])
def test_password_change_invalidates_the_cache_at_once(
    make_rig: Any, org: Organization, new_password: str | None
) -> None:
    user = create_user("jdoe", org, "s3cret")
    rig = make_rig()
    rig.login("jdoe", "s3cret")  # now cached
    new_hash = fast_hasher().hash(new_password) if new_password else None
    User.update(password_hash=new_hash).where(User.id == user.id).execute()
    assert rig.refused("jdoe", "s3cret") is AuthenticationFailed
    if new_password:
        assert rig.login("jdoe", new_password).user_id == user.id


def test_disabled_organization_is_401_even_when_cached(make_rig: Any, org: Organization) -> None:
    create_user("jdoe", org, "s3cret")
    rig = make_rig()
    rig.login("jdoe", "s3cret")
    Organization.update(active=False).where(Organization.id == org.id).execute()
    assert rig.refused("jdoe", "s3cret") is AuthenticationFailed
    assert rig.passwords.calls == {"verify": 1, "dummy_verify": 1, "hash": 0}  # paid like a wrong password
    Organization.update(active=True).where(Organization.id == org.id).execute()
    rig.login("jdoe", "s3cret")


def test_user_without_password_is_401_after_a_dummy_verify(make_rig: Any, org: Organization) -> None:
    create_user("jdoe", org)
    rig = make_rig()
    assert rig.refused("jdoe", "anything") is AuthenticationFailed
    assert rig.passwords.calls == {"verify": 0, "dummy_verify": 1, "hash": 0}


def test_rehash_after_a_parameter_change(
    make_rig: Any, org: Organization, caplog: pytest.LogCaptureFixture
) -> None:
    user = create_user("jdoe", org, "s3cret", hasher=fast_hasher())  # t=1, m=1024
    rig = make_rig(argon2_time_cost=2, argon2_memory_kib=2048)
    with caplog.at_level(logging.INFO, logger="endpoint.auth.end_user"):
        rig.login("jdoe", "s3cret")
    stored = User.get_by_id(user.id).password_hash
    assert argon2.extract_parameters(stored).time_cost == 2
    assert argon2.extract_parameters(stored).memory_cost == 2048
    assert "rehashed" in caplog.text
    rig.login("jdoe", "s3cret")  # the new hash was cached, and no second rehash happens
    assert rig.passwords.calls == {"verify": 1, "dummy_verify": 0, "hash": 1}
    assert User.get_by_id(user.id).password_hash == stored


def test_rehash_never_overwrites_a_concurrent_change(
    make_rig: Any, org: Organization, caplog: pytest.LogCaptureFixture
) -> None:
    user = create_user("jdoe", org, "s3cret", hasher=fast_hasher())
    rig = make_rig(argon2_time_cost=2)
    concurrent = fast_hasher().hash("set-by-an-admin")
    real_hash = rig.passwords.hash

    async def hash_during_a_password_change(password: str) -> str:
        User.update(password_hash=concurrent).where(User.id == user.id).execute()
        return await real_hash(password)

    rig.passwords.hash = hash_during_a_password_change  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="endpoint.auth.end_user"):
        rig.login("jdoe", "s3cret")
    assert User.get_by_id(user.id).password_hash == concurrent
    assert "hash changed meanwhile" in caplog.text


def test_identity_throttle_429_then_recovers(make_rig: Any, org: Organization) -> None:
    create_user("jdoe", org, "s3cret")
    rig = make_rig(failure_limit=3, failure_window=300)
    for _ in range(3):
        assert rig.refused("JDoe", "wrong") is AuthenticationFailed
    assert rig.refused("jdoe", "s3cret") is TooManyRequests  # even the right password
    assert rig.passwords.calls["verify"] == 3  # and the refusal cost no argon2
    rig.clock.now += 300
    rig.login("jdoe", "s3cret")


def test_unknown_identities_are_throttled_like_known_ones(make_rig: Any) -> None:
    rig = make_rig(failure_limit=2)
    assert [rig.refused("nobody", "x") for _ in range(3)] == [
        AuthenticationFailed,
        AuthenticationFailed,
        TooManyRequests,
    ]


def test_other_identities_failures_never_refuse_a_correct_login(make_rig: Any, org: Organization) -> None:
    """The global-lockout repro: everything arrives from the proxy's one address."""
    create_user("jdoe", org, "s3cret")
    rig = make_rig(client_failure_soft_limit=3, failure_max_delay=0.05)
    for i in range(50):
        assert rig.refused(f"someone.typing.{i}", f"wrong-{i}") is AuthenticationFailed
    started = time.perf_counter()
    assert rig.login("jdoe", "s3cret").login == "jdoe"  # not refused, and not delayed
    assert time.perf_counter() - started < 0.05


def test_a_clients_failed_attempts_are_answered_later_and_later(make_rig: Any, org: Organization) -> None:
    rig = make_rig(client_failure_soft_limit=2, failure_max_delay=0.2, failure_limit=100)

    def timed_failure(i: int) -> float:
        started = time.perf_counter()
        rig.refused(f"guess-{i}", "x")
        return time.perf_counter() - started

    quick = [timed_failure(i) for i in range(2)]
    slow = [timed_failure(i) for i in range(2, 5)]
    assert max(quick) < 0.1 and min(slow) >= 0.09 and slow[-1] >= 0.19
    elsewhere = time.perf_counter()
    rig.refused("guess-x", "x", ip="198.51.100.9")  # another client's failures are its own
    assert time.perf_counter() - elsewhere < 0.1


def test_a_client_hammering_one_identity_is_refused_for_it_only(make_rig: Any, org: Organization) -> None:
    create_user("jdoe", org, "s3cret")
    create_user("other", org, "0ther")
    rig = make_rig(pair_failure_limit=2, failure_limit=10, failure_max_delay=0)
    for _ in range(2):
        rig.refused("jdoe", "wrong")
    assert rig.refused("jdoe", "s3cret") is TooManyRequests  # this client, this identity
    rig.login("jdoe", "s3cret", ip="198.51.100.9")  # the identity elsewhere
    rig.login("other", "0ther")  # another identity here


def test_success_resets_identity_and_pair_counters(make_rig: Any, org: Organization) -> None:
    create_user("jdoe", org, "s3cret")
    rig = make_rig(failure_limit=3, pair_failure_limit=3, failure_max_delay=0)
    for _ in range(2):
        rig.refused("jdoe", "wrong")
    rig.login("jdoe", "s3cret")
    for _ in range(2):
        rig.refused("jdoe", "wrong")
    rig.login("jdoe", "s3cret")  # 2 failures since the success: under both limits


def test_parallel_wrong_passwords_respect_the_verifier_cap(make_rig: Any, org: Organization) -> None:
    create_user("jdoe", org, "s3cret")
    rig = make_rig(
        max_pending_verifies=4,
        verify_threads=2,
        failure_limit=100,
        pair_failure_limit=100,
        failure_max_delay=0,
    )
    rig.passwords.gate = threading.Event()
    peak = 0

    async def scenario() -> list[BaseException | AuthenticatedUser]:
        nonlocal peak
        # Distinct guesses, as an attacker sends them (identical ones would share a single verify).
        headers = [cyberapp_auth("jdoe", f"wrong-{i}") for i in range(24)]
        tasks = [asyncio.create_task(rig.authenticate(header, IP)) for header in headers]
        deadline = time.monotonic() + 5
        while sum(t.done() for t in tasks) < 20 and time.monotonic() < deadline:
            peak = max(peak, rig.passwords.in_flight)
            await asyncio.sleep(0.001)
        peak = max(peak, rig.passwords.in_flight)
        assert rig.passwords.gate is not None
        rig.passwords.gate.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(scenario())
    kinds = [type(r) for r in results]
    assert kinds.count(TooManyRequests) == 20 and kinds.count(AuthenticationFailed) == 4
    assert peak == 4
    assert rig.passwords.in_flight == 0


def test_concurrent_identical_logins_share_one_verify(make_rig: Any, org: Organization) -> None:
    """A cold cache under load: many requests with the same credentials cost one argon2 verify."""
    create_user("herd", org, "herd-password")
    rig = make_rig()

    async def burst() -> list[AuthenticatedUser]:
        header = cyberapp_auth("herd", "herd-password")
        return await asyncio.gather(*(rig.authenticate(header, IP) for _ in range(16)))

    users = asyncio.run(burst())
    assert len(users) == 16 and {u.login for u in users} == {"herd"}
    assert rig.passwords.calls["verify"] == 1


def test_concurrent_different_passwords_are_verified_separately(make_rig: Any, org: Organization) -> None:
    create_user("pair", org, "right-password")
    rig = make_rig()

    async def burst() -> list[object]:
        good = rig.authenticate(cyberapp_auth("pair", "right-password"), IP)
        bad = rig.authenticate(cyberapp_auth("pair", "wrong-password"), IP)
        return await asyncio.gather(good, bad, return_exceptions=True)

    good, bad = asyncio.run(burst())
    assert isinstance(good, AuthenticatedUser) and isinstance(bad, AuthenticationFailed)
    assert rig.passwords.calls["verify"] == 2
