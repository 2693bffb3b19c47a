"""Data and requests for the callback benchmark: a seeded database and pre-signed users_read calls."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.loadgen import build_request
from endpoint.auth.passwords import make_hasher
from endpoint.config.sections import AuthSettings
from models import User, init_database, migrate
from models.db import DatabaseSettings
from tests.support.builders import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    create_consumer,
    create_customer,
    create_org,
    cyberapp_auth,
    map_org,
    sign,
)
from tests.support.databases import scratch_database
from tests.support.gateway_tokens import JwksServer, token
from tests.support.live_endpoint import ENDPOINT_ID
from tests.support.simulator_processes import make_tls

PUBLIC_URL = "https://connector.example.com/"
TENANT = "0dd47bbb-d065-447f-ab7c-06e05887078b"
PASSWORD = "bench-admin-password"


@contextmanager
def seeded_database(backend: str, tmp: Path) -> Iterator[str]:
    """A fresh database on ``backend`` with the benchmark's data; yields its URL, drops it afterwards."""
    with scratch_database(backend, tmp) as settings:
        seed(settings)
        yield settings.url


def seed(settings: DatabaseSettings) -> None:
    """Partner + admin (production argon2 hash), a mapped customer with 50 users, the consumer."""
    database = init_database(settings)
    migrate(database)
    hasher = make_hasher(AuthSettings())
    with database.connection_context():
        create_consumer()
        partner = create_org("Bench Partner")
        User.create(
            login="admin",
            name="Admin",
            email="admin@example.com",
            organization=partner,
            password_hash=hasher.hash(PASSWORD),
        )
        customer = create_customer("Fifty Seats", partner)
        map_org(customer, TENANT)
        User.insert_many(
            [
                {
                    "id": str(uuid.uuid4()),
                    "login": f"user{i:02d}",
                    "name": f"User {i:02d}",
                    "email": f"user{i:02d}@example.com",
                    "organization": customer.id,
                }
                for i in range(50)
            ]
        ).execute()
    database.close_all()


@contextmanager
def jwt_mode(tmp: Path, workers: int) -> Iterator[tuple[list[str], str, Callable[[], None]]]:
    """The gateway's side of a ``--auth jwt`` run: (endpoint flags, the Bearer token, wait-for-keys).

    The JWKS is served over TLS on loopback and fetched by the endpoint through its outbound session (CA
    bundle from the flags). Every request carries the same token, as the gateway reuses one for its hour:
    the endpoint still verifies the signature on each request (it caches no verified token).
    """
    tmp.mkdir(parents=True, exist_ok=True)
    tls = make_tls(tmp)
    with JwksServer(tls.cert_pem, tls.key_pem) as server:
        flags = [
            "--set=endpoint.callback_auth=acronis_jwt",
            f"--set=acronis_jwt.jwks_url={server.url}",
            f"--set=acronis_jwt.endpoint_ids={ENDPOINT_ID}",
            f"--set=proxy.ca_bundle={tls.ca_pem}",
        ]

        def keys_fetched(timeout: float = 20) -> None:
            deadline = time.monotonic() + timeout
            while server.hits < workers:  # every serving process fetches the JWKS once at start
                if time.monotonic() > deadline:
                    raise RuntimeError("the endpoint never fetched the JWKS")
                time.sleep(0.05)
            time.sleep(0.2)  # parsed and installed right after the answer

        yield flags, token(), keys_fetched


def users_read_request(host: str, bearer: str | None = None) -> bytes:
    """One users_read callback as raw HTTP/1.1 bytes: freshly OAuth-signed (its own nonce), or with the
    gateway's ``bearer`` token."""
    envelope = {
        "type": "cti.a.p.acgw.request.v1.0~vendor.app.users_read.v1.0",
        "request_id": str(uuid.uuid4()),
        "created_at": "2026-11-22T10:00:00+00:00",
        "context": {
            "callback_id": "cti.a.p.acgw.callback.v1.0~vendor.app.users_read.v1.0",
            "endpoint_id": "cti.a.p.acgw.endpoint.v1.0~vendor.app.endpoint.v1.0",
            "tenant_id": TENANT,
            "datacenter_url": "https://eu8-cloud.acronis.com",
        },
    }
    body = json.dumps(envelope).encode()
    user = {"X-CyberApp-Auth": cyberapp_auth("admin", PASSWORD)}
    if bearer is not None:
        headers = {"Content-Type": "application/json", "Authorization": "Bearer " + bearer, **user}
        return build_request("POST", "/callback", host, headers, body)
    headers = sign("POST", PUBLIC_URL + "callback", user, key=CONSUMER_KEY, secret=CONSUMER_SECRET)
    return build_request("POST", "/callback", host, headers, body)
