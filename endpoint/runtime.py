"""Composition root of the serving process: builds every service object once from the settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from endpoint.aps.service import ApsService
from endpoint.auth.credential_cache import VerifiedCredentialCache
from endpoint.auth.end_user import UserAuthenticator
from endpoint.auth.oauth import SignatureVerifier
from endpoint.auth.passwords import PasswordService
from endpoint.auth.stages import OAuthStage, TransportStage
from endpoint.auth.throttle import FailureThrottle
from endpoint.callbacks.dispatch import CallbackDispatcher
from endpoint.executors import DatabaseRunner
from endpoint.settings import Settings


class InFlight:
    """The requests being handled right now, so a stop can let them finish (IOLoop thread only)."""

    def __init__(self) -> None:
        self._active: set[int] = set()

    def enter(self, token: int) -> None:
        self._active.add(token)

    def leave(self, token: int) -> None:
        self._active.discard(token)

    def __len__(self) -> int:
        return len(self._active)


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything a handler may use, passed to handlers through ``initialize()``."""

    settings: Settings
    db: DatabaseRunner
    passwords: PasswordService
    authenticator: UserAuthenticator
    dispatcher: CallbackDispatcher
    transport_stages: tuple[TransportStage, ...]
    aps: ApsService
    inflight: InFlight = field(default_factory=InFlight)

    def start(self) -> None:
        """Background work of the serving process (the APS job runner)."""
        self.aps.start()

    def close(self) -> None:
        self.aps.close()
        self.passwords.shutdown()
        self.db.shutdown()


def build_runtime(settings: Settings, environ: Mapping[str, str] | None = None) -> Runtime:
    """Build the services (the database must already be initialized and migrated).

    ``environ`` (default: the process environment) holds the secrets named by ``*_env`` settings.
    """
    auth = settings.auth
    db = DatabaseRunner(settings.server.db_threads)
    passwords = PasswordService(auth)
    authenticator = UserAuthenticator(
        auth,
        db,
        passwords,
        VerifiedCredentialCache(auth.cache_ttl, auth.cache_size),
        identity_throttle=FailureThrottle(auth.failure_limit, auth.failure_window, name="identity"),
        client_throttle=FailureThrottle(auth.client_failure_limit, auth.failure_window, name="client IP"),
    )
    dispatcher = CallbackDispatcher(settings.endpoint.app_code, db, passwords.hash)
    stages: tuple[TransportStage, ...] = (OAuthStage(SignatureVerifier(settings.endpoint), db),)
    aps = ApsService(settings, db, os.environ if environ is None else environ)
    return Runtime(settings, db, passwords, authenticator, dispatcher, stages, aps)
