"""Shared builders for tests: settings, tenancy data, consumers and an independent OAuth 1.0 signer."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import argon2
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_AUTH_HEADER, Client

from endpoint.config.sections import AuthSettings, EndpointSettings, ServerSettings
from endpoint.config.settings import Settings
from models import CUSTOMER, PARTNER, Consumer, ConsumerSecret, Organization, OrganizationMapping, User
from models.db import DatabaseSettings

PUBLIC_URL = "https://connector.example.com/"
CONSUMER_KEY = "acme-3f9c0e7d2b6a4c1e8d5f7a9b0c2e4d6f"  # the controller's <namespace>-<32 hex> format
CONSUMER_SECRET = "s3cr3t-" + "a" * 40
DATACENTER = "https://eu8-cloud.acronis.com"

# Cheap argon2id parameters keep the suite fast; production defaults are exercised in bench/.
FAST_ARGON2 = dict(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1)


def make_settings(database: DatabaseSettings | None = None, **sections: dict[str, Any]) -> Settings:
    """Settings built in code; ``sections`` override fields per section (``endpoint={...}``)."""
    endpoint = {"public_base_url": PUBLIC_URL, **sections.pop("endpoint", {})}
    auth = {**FAST_ARGON2, **sections.pop("auth", {})}
    server = {"port": 0, **sections.pop("server", {})}
    return Settings(
        endpoint=EndpointSettings(**endpoint),
        server=ServerSettings(**server),
        auth=AuthSettings(**auth),
        database=database or DatabaseSettings(url="sqlite:///:memory:"),
        **sections,  # type: ignore[arg-type]
    )


def fast_hasher() -> argon2.PasswordHasher:
    return argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def create_org(
    name: str, kind: str = PARTNER, parent: Organization | None = None, **fields: Any
) -> Organization:
    return Organization.create(name=name, kind=kind, parent=parent, **fields)


def create_customer(name: str, parent: Organization, **fields: Any) -> Organization:
    return create_org(name, CUSTOMER, parent, **fields)


def create_user(
    login: str,
    organization: Organization,
    password: str | None = None,
    *,
    name: str | None = None,
    email: str | None = None,
    hasher: argon2.PasswordHasher | None = None,
) -> User:
    password_hash = (hasher or fast_hasher()).hash(password) if password is not None else None
    return User.create(
        login=User.normalize_login(login),
        name=name or login,
        email=email or f"{login.lower()}@example.com",
        organization=organization,
        password_hash=password_hash,
    )


def map_org(
    organization: Organization, acronis_tenant_id: str, datacenter_url: str = DATACENTER
) -> OrganizationMapping:
    return OrganizationMapping.create(
        organization=organization, acronis_tenant_id=acronis_tenant_id, datacenter_url=datacenter_url
    )


def create_consumer(key: str = CONSUMER_KEY, secret: str = CONSUMER_SECRET, **secret_fields: Any) -> Consumer:
    consumer = Consumer.create(key=key)
    ConsumerSecret.create(consumer=consumer, secret=secret, **secret_fields)
    return consumer


def cyberapp_auth(identity: str, password: str) -> str:
    """The X-CyberApp-Auth value: base64("<identity>:" + JSON secrets)."""
    raw = identity + ":" + json.dumps({"password": password})
    return base64.b64encode(raw.encode("utf-8")).decode("ascii")


def sign(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    *,
    key: str = CONSUMER_KEY,
    secret: str = CONSUMER_SECRET,
    signature_method: str = SIGNATURE_HMAC_SHA1,
    body: bytes | None = None,
    nonce: str | None = None,
    timestamp: str | None = None,
) -> dict[str, str]:
    """Sign like the controller: two-legged OAuth 1.0 over the public URL, JSON body unsigned.

    Pass ``body`` only to have oauthlib add ``oauth_body_hash`` (what its Client does for non-form bodies).
    """
    client = Client(
        key,
        client_secret=secret,
        signature_method=signature_method,
        signature_type=SIGNATURE_TYPE_AUTH_HEADER,
        nonce=nonce or secrets.token_hex(16),
        timestamp=timestamp,
    )
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    _, signed_headers, _ = client.sign(url, http_method=method, body=body, headers=all_headers)
    return dict(signed_headers)
