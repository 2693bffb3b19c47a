"""Identities carry who is calling and what the unit of work needs, never a credential."""

from __future__ import annotations

import peewee as pw

from endpoint.auth.consumers import ConsumerSecrets
from endpoint.auth.end_user import Account
from endpoint.auth.nonces import RecentNonces
from endpoint.auth.oauth import InboundRequest, SignatureVerifier
from endpoint.config.sections import EndpointSettings
from tests.support.builders import CONSUMER_SECRET, PUBLIC_URL, create_consumer, sign


def test_a_verified_consumer_holds_no_secret_and_no_signature(database: pw.Database) -> None:
    create_consumer()
    secrets = ConsumerSecrets(refresh_interval=2)
    secrets.load()
    verifier = SignatureVerifier(EndpointSettings(public_base_url=PUBLIC_URL), secrets, RecentNonces(300))
    headers = sign("POST", PUBLIC_URL + "callback")
    signature = headers["Authorization"].split('oauth_signature="')[1].split('"')[0]
    consumer = verifier.verify(InboundRequest("POST", "/callback", headers))
    assert CONSUMER_SECRET not in repr(consumer) and signature not in repr(consumer)


def test_an_authenticated_user_drops_the_password_hash() -> None:
    account = Account("u-1", "admin", "$argon2id$v=19$secret-hash", "o-1", "partner", True)
    user = account.user()
    assert (user.user_id, user.organization_id, user.organization_kind) == ("u-1", "o-1", "partner")
    assert "argon2" not in repr(user)
