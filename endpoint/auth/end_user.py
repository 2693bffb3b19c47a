"""The end-user authentication stage: X-CyberApp-Auth -> AuthenticatedUser (acronis-callbacks.md §2.1)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import NoReturn

from endpoint.auth.credential_cache import VerifiedCredentialCache
from endpoint.auth.credentials import decode_auth_header
from endpoint.auth.identity import AuthenticatedUser
from endpoint.auth.passwords import PasswordService
from endpoint.auth.throttle import FailureThrottle
from endpoint.errors import AuthenticationFailed, TooManyRequests
from endpoint.executors import DatabaseRunner
from endpoint.settings import AuthSettings
from models.prepared import PreparedQuery
from models.tables import Organization, User

log = logging.getLogger(__name__)

_LOGGED_LOGIN_CHARS = 80  # identities are attacker-chosen and up to the header cap long


@dataclass(frozen=True, slots=True)
class _Account:
    """What one lookup returns: the user, their password hash and their organization's state."""

    user_id: str
    login: str
    password_hash: str | None
    organization_id: str
    organization_kind: str
    organization_active: bool


class UserAuthenticator:
    """Verifies X-CyberApp-Auth: decode, throttle, load the user, then cache or argon2 (design A + D).

    Every failure is the same AuthenticationFailed to the client, with the reason in the log only;
    unknown users, users without a password and users of disabled tenants pay a dummy verify, so their
    answer takes as long as a wrong password.
    """

    def __init__(
        self,
        settings: AuthSettings,
        db: DatabaseRunner,
        passwords: PasswordService,
        cache: VerifiedCredentialCache,
        identity_throttle: FailureThrottle,
        client_throttle: FailureThrottle,
    ) -> None:
        self._settings = settings
        self._db = db
        self._passwords = passwords
        self._cache = cache
        self._identity_throttle = identity_throttle
        self._client_throttle = client_throttle
        self._inflight: dict[bytes, asyncio.Future[bool]] = {}  # single-flight verifies (IOLoop only)

    async def authenticate(self, header_value: str | None, client_ip: str) -> AuthenticatedUser:
        """The user behind ``header_value``; ``client_ip`` is the real client (trusted proxies applied).

        :raise AuthenticationFailed: malformed header, unknown user, no password, disabled tenant, or
            wrong password (401).
        :raise TooManyRequests: too many recent failures for the identity or the client IP, or the
            password verifier pool is saturated (429).
        """
        try:
            credentials = decode_auth_header(header_value, self._settings.max_header_bytes)
        except AuthenticationFailed as e:
            log.info("end-user login failed: %s (client %s)", e.reason, client_ip)
            raise
        login = User.normalize_login(credentials.identity)
        try:
            return await self._authenticate(login, credentials.password, client_ip)
        except TooManyRequests as e:
            shown = _loggable(login)
            log.info("end-user login refused: %s (login %s, client %s)", e.reason, shown, client_ip)
            raise

    async def _authenticate(self, login: str, password: str, client_ip: str) -> AuthenticatedUser:
        self._identity_throttle.check(login)
        self._client_throttle.check(client_ip)
        # Re-read on every request, cache hit or not: a disabled tenant, a deleted user or a reset
        # password takes effect at once (security-checklist.md §7).
        account = await self._db.run(_load_account, login)
        if account is None or account.password_hash is None or not account.organization_active:
            await self._passwords.dummy_verify(password)
            self._fail(login, client_ip, _why_unusable(account))
        stored_hash = account.password_hash
        if self._cache.lookup(account.user_id, password, stored_hash):
            log.debug("end-user login verified by the credential cache (login %s)", _loggable(login))
        else:
            if not await self._verify_once(account.user_id, password, stored_hash):
                self._fail(login, client_ip, "wrong password")
            self._cache.remember(account.user_id, password, stored_hash)
            if self._passwords.needs_rehash(stored_hash):
                await self._rehash(account.user_id, login, stored_hash, password)
        # The client IP's counter is deliberately not reset: one valid account must not be usable to
        # wipe the failures an IP has collected against other identities.
        self._identity_throttle.reset(login)
        return AuthenticatedUser(
            user_id=account.user_id,
            login=account.login,
            organization_id=account.organization_id,
            organization_kind=account.organization_kind,
        )

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

    def _fail(self, login: str, client_ip: str, reason: str) -> NoReturn:
        self._identity_throttle.record_failure(login)
        self._client_throttle.record_failure(client_ip)
        log.info("end-user login failed: %s (login %s, client %s)", reason, _loggable(login), client_ip)
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


def _load_account(login: str) -> _Account | None:
    """One query: the user by normalized login, joined with their organization. Runs in a db thread."""
    row = _ACCOUNT_BY_LOGIN.one(login=login)
    return None if row is None else _Account(row[0], row[1], row[2], row[3], row[4], bool(row[5]))


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


def _why_unusable(account: _Account | None) -> str:
    """Why ``account`` cannot log in whatever the password (log reason)."""
    if account is None:
        return "unknown user"
    if account.password_hash is None:
        return "user has no password"
    return "organization disabled"


def _loggable(login: str) -> str:
    """The login for a log line: quoted and truncated (the decoder already refused control characters)."""
    if len(login) > _LOGGED_LOGIN_CHARS:
        return repr(login[:_LOGGED_LOGIN_CHARS] + "...")
    return repr(login)
