"""Composition root of the serving process: builds every service object once from the settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from endpoint.aps.service import ApsService
from endpoint.auth.acronis_jwt import AcronisJwtStage
from endpoint.auth.consumers import ConsumerSecrets
from endpoint.auth.credential_cache import VerifiedCredentialCache
from endpoint.auth.end_user import EndUserStage
from endpoint.auth.jwks import JwksKeyStore
from endpoint.auth.nonces import RecentNonces
from endpoint.auth.oauth import SignatureVerifier
from endpoint.auth.passwords import PasswordService
from endpoint.auth.stages import Stages, TransportStage
from endpoint.auth.throttle import LoginThrottle
from endpoint.callbacks.dispatch import CallbackDispatcher
from endpoint.config.settings import Settings
from endpoint.observability.metrics import ServeMetrics
from endpoint.web.limits import BodyBudget
from endpoint.work.executors import DatabaseRunner
from models.checkpointer import WalCheckpointer
from models.db import db, unit_of_work
from models.sqlite import sqlite_path
from proxy.jwks import fetch_jwks


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
    secrets: ConsumerSecrets
    aps_stages: Stages  # transport only
    callback_stages: Stages  # transport, then the end user
    dispatcher: CallbackDispatcher
    aps: ApsService
    bodies: BodyBudget
    inflight: InFlight = field(default_factory=InFlight)
    jwks: JwksKeyStore | None = None  # the gateway's keys, when endpoint.callback_auth lists acronis_jwt
    nonces: RecentNonces | None = None  # the in-process replay claims (sampled for metrics)
    metrics: ServeMetrics | None = None  # when metrics.port is set (every worker counts; one serves)
    checkpointer: WalCheckpointer | None = None  # a SQLite file's WAL checkpoints, off the request path

    def start(self) -> None:
        """Before serving: the consumer secrets (blocking, once), the APS job runner, and the first JWKS
        fetch (on its own thread: the endpoint serves even while the JWKS is unreachable)."""
        with unit_of_work():
            self.secrets.load()
        if self.checkpointer is not None:
            self.checkpointer.start()
        self.aps.start()
        if self.jwks is not None:
            self.jwks.refresh_soon()

    def sample_metrics(self) -> None:
        """The in-process gauges (IOLoop, periodic)."""
        if self.metrics is not None:
            self.metrics.sample(
                argon2_pending=self.passwords.in_flight,
                nonce_claims=len(self.nonces) if self.nonces is not None else 0,
                jwks_age=self.jwks.age() if self.jwks is not None else None,
            )

    def close(self) -> None:
        if self.jwks is not None:
            self.jwks.close()
        self.aps.close()
        self.passwords.shutdown()
        self.db.shutdown()
        if self.checkpointer is not None:
            self.checkpointer.close()


def build_runtime(settings: Settings, environ: Mapping[str, str] | None = None) -> Runtime:
    """Build the services (the database must already be initialized and migrated).

    ``environ`` (default: the process environment) holds the secrets named by ``*_env`` settings.
    """
    auth, endpoint = settings.auth, settings.endpoint
    db = DatabaseRunner(
        settings.server.db_threads, inline=settings.server.inline_database(settings.database.backend)
    )
    passwords = PasswordService(auth)
    secrets = ConsumerSecrets(endpoint.secrets_refresh)
    nonces = RecentNonces(endpoint.timestamp_window)
    oauth = SignatureVerifier(endpoint, secrets, nonces)
    end_user = EndUserStage(
        auth,
        db,
        passwords,
        VerifiedCredentialCache(auth.cache_ttl, auth.cache_size),
        LoginThrottle(
            identity_limit=auth.failure_limit,
            pair_limit=auth.pair_failure_limit,
            client_soft_limit=auth.client_failure_soft_limit,
            window=auth.failure_window,
            max_delay=auth.failure_max_delay,
        ),
    )
    mirroring = settings.callbacks
    parent = mirroring.mirrored_partners_parent if mirroring.mirroring else None
    dispatcher = CallbackDispatcher(endpoint.app_code, db, passwords.hash, parent)
    aps = ApsService(settings, db, os.environ if environ is None else environ)
    # /callback takes the schemes endpoint.callback_auth lists, picked by the Authorization scheme; the
    # JWKS comes through the APS services' session, the process's one outbound session.
    transports: dict[str, TransportStage] = {"oauth1": oauth}
    jwks = None
    if "acronis_jwt" in endpoint.callback_auth:
        gateway = settings.acronis_jwt
        jwks = JwksKeyStore(
            lambda: fetch_jwks(aps.outbound.session(), gateway.jwks_url), gateway.refresh_interval
        )
        transports["acronis_jwt"] = AcronisJwtStage(gateway, jwks)
    return Runtime(
        settings,
        db,
        passwords,
        secrets,
        aps_stages=Stages((oauth,)),
        callback_stages=Stages(tuple(transports[name] for name in endpoint.callback_auth), end_user),
        dispatcher=dispatcher,
        aps=aps,
        bodies=BodyBudget(endpoint.max_buffered_body),
        jwks=jwks,
        nonces=nonces,
        metrics=ServeMetrics() if settings.metrics.port is not None else None,
        checkpointer=_checkpointer(settings),
    )


def _checkpointer(settings: Settings) -> WalCheckpointer | None:
    """For a SQLite file (the database must be initialized): its WAL checkpoints, off the request path."""
    database = settings.database
    if database.backend != "sqlite" or not database.sqlite_checkpoint_interval:
        return None
    path = sqlite_path(database.url)
    if path == ":memory:":
        return None
    return WalCheckpointer(path, database.sqlite_checkpoint_interval, db.obj.write_lock)
