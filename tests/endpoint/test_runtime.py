"""build_runtime: one object graph from the settings, usable end to end without HTTP, and closable."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import peewee as pw
import pytest

from endpoint.auth.acronis_jwt import AcronisJwtStage
from endpoint.auth.identity import AuthenticatedUser, VerifiedConsumer
from endpoint.auth.jwt_settings import AcronisJwtSettings
from endpoint.auth.oauth import InboundRequest, SignatureVerifier
from endpoint.callbacks.envelope import parse_callback_request
from endpoint.callbacks.responses import CallbackResponse
from endpoint.runtime import Runtime, build_runtime
from models.db import DatabaseSettings
from tests.support.builders import CONSUMER_KEY, PUBLIC_URL, cyberapp_auth, make_settings, sign
from tests.support.gateway_tokens import jwks, public_jwk
from tests.support.live_endpoint import CALLBACK_PREFIX, EMPTY_TYPE, ENDPOINT_ID
from tests.support.two_partner_tenancy import ADMIN_PASSWORD, TENANT_A, Tenancy, build_tenancy


@pytest.fixture
def tenancy(database: pw.Database) -> Tenancy:
    return build_tenancy()


@pytest.fixture
def runtime(tenancy: Tenancy, db_settings: DatabaseSettings) -> Iterator[Runtime]:
    runtime = build_runtime(make_settings(database=db_settings, server={"db_threads": 3}))
    yield runtime
    runtime.close()


def enablement_read() -> bytes:
    return json.dumps(
        {
            "type": EMPTY_TYPE,
            "request_id": str(uuid.uuid4()),
            "created_at": "2026-11-22T10:00:00+00:00",
            "context": {
                "callback_id": CALLBACK_PREFIX + "a.p.enablement.read.v1.0",
                "endpoint_id": ENDPOINT_ID,
                "tenant_id": TENANT_A,
                "datacenter_url": "https://eu8-cloud.acronis.com",
            },
        }
    ).encode()


def test_the_runtime_is_wired_from_the_settings(runtime: Runtime) -> None:
    assert runtime.settings.server.db_threads == 3
    [stage] = runtime.aps_stages.transport
    assert isinstance(stage, SignatureVerifier) and runtime.aps_stages.end_user is None
    assert runtime.callback_stages.transport == (stage,) and runtime.callback_stages.end_user is not None
    # server.db_mode "auto": units of work on the IOLoop for embedded SQLite, on threads for servers.
    assert runtime.db.inline == (runtime.settings.database.backend == "sqlite")
    # The password service got the configured (fast) argon2 parameters, not the production defaults.
    hashed = asyncio.run(runtime.passwords.hash("pw"))
    assert "m=1024,t=1,p=1" in hashed


def test_one_signed_authenticated_callback_through_the_objects(runtime: Runtime, tenancy: Tenancy) -> None:
    body = enablement_read()
    request = InboundRequest("POST", "/callback", sign("POST", PUBLIC_URL + "callback"))
    runtime.start()  # loads the consumer secrets
    stages = runtime.callback_stages
    assert stages.end_user is not None

    async def flow() -> tuple[VerifiedConsumer, AuthenticatedUser, CallbackResponse]:
        _, consumer = stages.verify_transport(request)
        attempt = stages.end_user.attempt(cyberapp_auth("admin", ADMIN_PASSWORD), "127.0.0.1")
        account = await runtime.db.run(stages.end_user.lookup, attempt)
        user = await stages.end_user.verify(attempt, account)
        response = await runtime.dispatcher.dispatch(consumer.key, user, parse_callback_request(body))
        return consumer, user, response

    consumer, user, response = asyncio.run(flow())
    assert consumer.key == CONSUMER_KEY
    assert (user.login, user.organization_id) == ("admin", tenancy.partner.id)
    assert response.status == 200
    assert response.body["payload"] == {"vendor_tenant_id": tenancy.partner.id}
    assert response.body["request_id"] == json.loads(body)["request_id"]


def test_close_shuts_the_executors_down(tenancy: Tenancy, db_settings: DatabaseSettings) -> None:
    runtime = build_runtime(make_settings(database=db_settings))
    assert asyncio.run(runtime.db.run(lambda: 42)) == 42
    runtime.close()
    with pytest.raises(RuntimeError):
        asyncio.run(runtime.db.run(lambda: 42))
    with pytest.raises(RuntimeError):
        asyncio.run(runtime.passwords.hash("pw"))


def test_a_sqlite_file_gets_its_wal_checkpointer_and_close_stops_it(
    tenancy: Tenancy, db_settings: DatabaseSettings
) -> None:
    runtime = build_runtime(make_settings(database=db_settings))
    if db_settings.backend != "sqlite":
        assert runtime.checkpointer is None  # server databases checkpoint themselves
        runtime.close()
        return
    assert runtime.checkpointer is not None
    runtime.start()
    names = {thread.name for thread in threading.enumerate()}
    runtime.close()
    assert "wal-checkpoint" in names
    assert "wal-checkpoint" not in {thread.name for thread in threading.enumerate()}


def test_no_checkpointer_in_memory_or_when_switched_off(tmp_path: Path) -> None:
    for settings in (
        DatabaseSettings(url=f"sqlite:///{tmp_path}/c.db", sqlite_checkpoint_interval=0),
        DatabaseSettings(url="sqlite:///:memory:"),
    ):
        runtime = build_runtime(make_settings(database=settings))
        assert runtime.checkpointer is None
        runtime.close()


@pytest.mark.parametrize(
    ("callback_auth", "expected"),
    [
        (("oauth1",), [SignatureVerifier]),
        (("acronis_jwt",), [AcronisJwtStage]),
        (("oauth1", "acronis_jwt"), [SignatureVerifier, AcronisJwtStage]),
        (("acronis_jwt", "oauth1"), [AcronisJwtStage, SignatureVerifier]),
    ],
)
def test_callback_transports_follow_callback_auth_and_aps_stays_oauth(
    tenancy: Tenancy, db_settings: DatabaseSettings, callback_auth: tuple[str, ...], expected: list[type]
) -> None:
    settings = make_settings(
        database=db_settings,
        endpoint={"callback_auth": callback_auth},
        acronis_jwt=AcronisJwtSettings(endpoint_ids=(ENDPOINT_ID,)),
    )
    runtime = build_runtime(settings)
    try:
        assert [type(stage) for stage in runtime.callback_stages.transport] == expected
        [aps] = runtime.aps_stages.transport
        assert isinstance(aps, SignatureVerifier)
        assert (runtime.jwks is not None) == ("acronis_jwt" in callback_auth)
    finally:
        runtime.close()


def test_the_jwks_is_fetched_through_the_outbound_session(
    tenancy: Tenancy, db_settings: DatabaseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(
        database=db_settings,
        endpoint={"callback_auth": ("acronis_jwt",)},
        acronis_jwt=AcronisJwtSettings(jwks_url="https://idp.example/keys", endpoint_ids=(ENDPOINT_ID,)),
    )
    seen: list[tuple[object, str]] = []

    def fetch(session: object, url: str) -> bytes:
        seen.append((session, url))
        return jwks(public_jwk(0))

    monkeypatch.setattr("endpoint.runtime.fetch_jwks", fetch)
    runtime = build_runtime(settings)
    try:
        assert runtime.jwks is not None and runtime.jwks.refresh()
        [(session, url)] = seen
        assert session is runtime.aps.outbound.session() and url == "https://idp.example/keys"
    finally:
        runtime.close()
