"""The end-user stage: X-CyberApp-Auth -> AuthenticatedUser (acronis-callbacks.md §2.1).

It runs in three steps so that a request with a remembered credential costs no extra database round:
``attempt`` (on the IOLoop: decode, throttle), ``lookup`` + ``from_cache`` (inside the request's unit of
work), and only on a cache miss ``verify`` (argon2 on its bounded executor, awaited outside any unit).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import NoReturn

from endpoint.auth.credential_cache import VerifiedCredentialCache
from endpoint.auth.credentials import decode_auth_header
from endpoint.auth.identity import AuthenticatedUser
from endpoint.auth.passwords import PasswordService
from endpoint.auth.throttle import LoginThrottle
from endpoint.config.sections import AuthSettings
from endpoint.errors import AuthenticationFailed, TooManyRequests
from endpoint.work.executors import DatabaseRunner
from models.prepared import PreparedQuery
from models.tables import Organization, User

log = logging.getLogger(__name__)

_LOGGED_LOGIN_CHARS = 80  # identities are attacker-chosen and up to the header cap long


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """A decoded X-CyberApp-Auth that passed the throttle; ``repr()`` never shows the password."""

    login: str  # normalized
    password: str = field(repr=False)
    client: str  # the real client address (trusted proxies applied)


@dataclass(frozen=True, slots=True)
class Account:
    """What one lookup returns: the user, their password hash and their organization's state."""

    user_id: str
    login: str
    password_hash: str | None
    organization_id: str
    organization_kind: str
    organization_active: bool

    @property
    def usable(self) -> bool:
        return self.password_hash is not None and self.organization_active

    def user(self) -> AuthenticatedUser:
        return AuthenticatedUser(self.user_id, self.login, self.organization_id, self.organization_kind)


class EndUserStage:
    """Every failure is the same AuthenticationFailed to the client, with the reason in the log only;
    unknown users, users without a password and users of disabled tenants pay a dummy verify, so their
    answer takes as long as a wrong password (the oauthlib ``dummy_client`` rule).
    """

    def __init__(
        self,
        settings: AuthSettings,
        db: DatabaseRunner,
        passwords: PasswordService,
        cache: VerifiedCredentialCache,
        throttle: LoginThrottle,
    ) -> None:
        self._settings = settings
        self._db = db
        self._passwords = passwords
        self._cache = cache
        self._throttle = throttle
        self._inflight: dict[bytes, asyncio.Future[bool]] = {}  # single-flight verifies (IOLoop only)

    def attempt(self, header_value: str | None, client: str) -> LoginAttempt:
        """:raise AuthenticationFailed: a missing or malformed header (401).
        :raise TooManyRequests: too many recent failures for this identity, or for it from this client (429).
        """
        try:
            credentials = decode_auth_header(header_value, self._settings.max_header_bytes)
        except AuthenticationFailed as e:
            log.info("end-user login failed: %s (client %s)", e.reason, client, extra=_rejection(e.reason))
            raise
        login = User.normalize_login(credentials.identity)
        try:
            self._throttle.check(login, client)
        except TooManyRequests as e:
            log.info(
                "end-user login refused: %s (login %s, client %s)",
                e.reason,
                _loggable(login),
                client,
                extra=_rejection(e.reason),
            )
            raise
        return LoginAttempt(login, credentials.password, client)

    def lookup(self, attempt: LoginAttempt) -> Account | None:
        """In a unit of work, on every request, cache hit or not: a disabled tenant, a deleted user or a
        reset password takes effect at once (security-checklist.md §7)."""
        row = _ACCOUNT_BY_LOGIN.one(login=attempt.login)
        return None if row is None else Account(row[0], row[1], row[2], row[3], row[4], bool(row[5]))

    def from_cache(self, attempt: LoginAttempt, account: Account | None) -> AuthenticatedUser | None:
        """The user when this exact (user, password, stored hash) verified recently; None: call verify()."""
        if account is None or not account.usable or account.password_hash is None:
            return None
        if not self._cache.lookup(account.user_id, attempt.password, account.password_hash):
            return None
        self._throttle.record_success(attempt.login, attempt.client)
        return account.user()

    async def verify(self, attempt: LoginAttempt, account: Account | None) -> AuthenticatedUser:
        """argon2 (or its dummy) off the IOLoop. :raise AuthenticationFailed: (401, after the throttle's
        delay). :raise TooManyRequests: the verifier pool is saturated (429)."""
        if account is None or not account.usable or account.password_hash is None:
            await self._passwords.dummy_verify(attempt.password)
            await self._fail(attempt, _why_unusable(account))
        stored_hash = account.password_hash
        if self._cache.lookup(account.user_id, attempt.password, stored_hash):
            # Remembered since this request's unit of work looked (a concurrent twin verified it).
            self._throttle.record_success(attempt.login, attempt.client)
            return account.user()
        if not await self._verify_once(account.user_id, attempt.password, stored_hash):
            await self._fail(attempt, "wrong password")
        self._cache.remember(account.user_id, attempt.password, stored_hash)
        if self._passwords.needs_rehash(stored_hash):
            await self._rehash(account.user_id, attempt.login, stored_hash, attempt.password)
        self._throttle.record_success(attempt.login, attempt.client)
        return account.user()

    async def _verify_once(self, user_id: str, password: str, stored_hash: str) -> bool:
        """argon2 verify, shared by concurrent requests presenting the very same credentials.

        Without it a cold cache under load runs one 64 MiB verify per waiting request for the same
        user (a thundering herd). Only identical (user, password, hash) triples share a result, so
        nothing is ever decided for a request by someone else's password.
        """
        key = self._cache.fingerprint(user_id, password, stored_hash)
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._passwords.verify(stored_hash, password)
            future.set_result(result)
            return result
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must log it
            raise
        finally:
            del self._inflight[key]

    async def _fail(self, attempt: LoginAttempt, reason: str) -> NoReturn:
        delay = self._throttle.record_failure(attempt.login, attempt.client)
        log.info(
            "end-user login failed: %s (login %s, client %s, answer delayed %.2fs)",
            reason,
            _loggable(attempt.login),
            attempt.client,
            delay,
            extra=_rejection(reason),
        )
        if delay > 0:
            # Slows what the client's failures count (its failed attempts); other identities never wait.
            await asyncio.sleep(delay)
        raise AuthenticationFailed(reason=f"X-CyberApp-Auth: {reason}")

    async def _rehash(self, user_id: str, login: str, old_hash: str, password: str) -> None:
        """Store a hash made with the current parameters; best effort, the login has already succeeded."""
        try:
            new_hash = await self._passwords.hash(password)
            stored = await self._db.run(_replace_hash, user_id, old_hash, new_hash)
        except TooManyRequests:
            log.info("password rehash postponed: verifier pool saturated (login %s)", _loggable(login))
            return
        except Exception:
            # A database hiccup here must not turn a verified login into a 500; the next login retries.
            log.warning("password rehash failed (login %s)", _loggable(login), exc_info=True)
            return
        if stored:
            self._cache.remember(user_id, password, new_hash)
            log.info("password rehashed with the current argon2 parameters (login %s)", _loggable(login))
        else:
            log.info("password rehash skipped: the hash changed meanwhile (login %s)", _loggable(login))


_ACCOUNT_BY_LOGIN = PreparedQuery(
    lambda login: (
        User.select(
            User.id, User.login, User.password_hash, Organization.id, Organization.kind, Organization.active
        )
        .join(Organization)
        .where(User.login == login)
        .limit(1)
    ),
    login=str,
)


def _replace_hash(user_id: str, old_hash: str, new_hash: str) -> bool:
    """Compare-and-set: a password changed since the verify is never overwritten with the old one."""
    query = User.update(password_hash=new_hash).where((User.id == user_id) & (User.password_hash == old_hash))
    return query.execute() == 1


def _why_unusable(account: Account | None) -> str:
    """Why ``account`` cannot log in whatever the password (log reason)."""
    if account is None:
        return "unknown user"
    if account.password_hash is None:
        return "user has no password"
    return "organization disabled"


def _rejection(reason: str | None) -> dict[str, str]:
    """Marks a refused login's log line for sampling (endpoint/observability/logsetup.py: a guessing
    flood stays small)."""
    return {"rejection": f"login {reason or ''}"}


def _loggable(login: str) -> str:
    """The login for a log line: quoted and truncated (the decoder already refused control characters)."""
    if len(login) > _LOGGED_LOGIN_CHARS:
        return repr(login[:_LOGGED_LOGIN_CHARS] + "...")
    return repr(login)
