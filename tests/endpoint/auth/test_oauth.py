"""SignatureVerifier: structure, freshness, replay, rotation, body hash and public-URL binding.

verify() runs on the headers alone and touches no database: secrets come from the in-process snapshot
and a replay is caught by the process's claim table (the database record is tests/endpoint/auth/
test_nonces.py and the HTTP tests).
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import string
import time
from collections.abc import Callable

import peewee as pw
import pytest
from oauthlib.oauth1.rfc5849 import signature

from endpoint.auth.consumers import ConsumerSecrets
from endpoint.auth.identity import VerifiedConsumer
from endpoint.auth.nonces import RecentNonces
from endpoint.auth.oauth import InboundRequest, SignatureVerifier, base_string
from endpoint.config.sections import EndpointSettings
from endpoint.errors import AuthenticationFailed, PayloadError
from models import ConsumerSecret, Nonce
from models.db import utcnow
from tests.support.builders import CONSUMER_KEY, CONSUMER_SECRET, PUBLIC_URL, create_consumer, sign

BODY = b'{"a": 1}'


@pytest.fixture
def consumer(database: pw.Database) -> None:
    create_consumer()


class Verifier(SignatureVerifier):
    """The real verifier over a freshly loaded snapshot; ``recent`` is its claim table."""

    secrets: ConsumerSecrets
    recent: RecentNonces

    def reload(self) -> None:
        self.secrets.load()


def make_verifier(**fields: object) -> Verifier:
    settings = EndpointSettings(**{"public_base_url": PUBLIC_URL, **fields})  # type: ignore[arg-type]
    secrets, recent = ConsumerSecrets(refresh_interval=2), RecentNonces(settings.timestamp_window)
    verifier = Verifier(settings, secrets, recent)
    verifier.secrets, verifier.recent = secrets, recent
    verifier.reload()
    return verifier


def request(uri: str = "/callback", method: str = "POST", **sign_kwargs: object) -> InboundRequest:
    signed_url = sign_kwargs.pop("signed_url", None) or PUBLIC_URL.rstrip("/") + uri
    headers = sign(method, str(signed_url), **sign_kwargs)  # type: ignore[arg-type]
    return InboundRequest(method, uri, headers)


def with_header(req: InboundRequest, value: str) -> InboundRequest:
    return InboundRequest(req.method, req.uri, {**req.headers, "Authorization": value})


def verified_with_body(verifier: Verifier, headers: dict[str, str], body: bytes) -> VerifiedConsumer:
    consumer = verifier.verify(InboundRequest("POST", "/callback", headers))
    verifier.check_body(consumer, body, headers.get("Content-Type", ""))
    return consumer


def test_valid_controller_request_verifies_without_the_database(
    consumer: None, database: pw.Database
) -> None:
    verifier = make_verifier()
    req = request()
    database.close()  # verify() must not need a connection: it runs before the body, on the IOLoop
    try:
        verified = verifier.verify(req)
    finally:
        database.connect()
    assert verified.key == CONSUMER_KEY
    assert verified.nonce and verified.timestamp  # for the unit of work to record
    assert Nonce.select().count() == 0 and len(verifier.recent) == 1


def test_hmac_sha256_is_accepted_unless_disabled(consumer: None) -> None:
    assert make_verifier().verify(request(signature_method="HMAC-SHA256")).key == CONSUMER_KEY
    with pytest.raises(PayloadError):
        make_verifier(signature_methods=("HMAC-SHA1",)).verify(request(signature_method="HMAC-SHA256"))


@pytest.mark.parametrize("method", ["PLAINTEXT", "RSA-SHA1", "hmac-sha1", "HMAC-MD5", ""])
def test_other_signature_methods_are_refused(consumer: None, method: str) -> None:
    header = request().headers["Authorization"]
    tampered = header.replace('oauth_signature_method="HMAC-SHA1"', f'oauth_signature_method="{method}"')
    with pytest.raises(PayloadError):
        make_verifier().verify(with_header(request(), tampered))
    assert Nonce.select().count() == 0


def test_replay_is_rejected_and_only_valid_signatures_store_nonces(consumer: None) -> None:
    verifier = make_verifier()
    req = request()
    verifier.verify(req)
    with pytest.raises(AuthenticationFailed, match="replay"):
        verifier.verify(req)
    bad = request(secret="wrong-secret-000000")
    with pytest.raises(AuthenticationFailed):
        verifier.verify(bad)
    assert len(verifier.recent) == 1  # the rejected request left nothing behind


def test_same_nonce_with_another_timestamp_is_a_replay(consumer: None) -> None:
    verifier = make_verifier()
    now = int(time.time())
    verifier.verify(request(nonce="fixednonce-1234", timestamp=str(now)))
    with pytest.raises(AuthenticationFailed):
        verifier.verify(request(nonce="fixednonce-1234", timestamp=str(now - 5)))


@pytest.mark.parametrize(
    ("timestamp", "error"),
    [
        (lambda now: str(now - 301), AuthenticationFailed),
        (lambda now: str(now + 301), AuthenticationFailed),
        (lambda now: str(now + 10 * 365 * 86400), AuthenticationFailed),
        (lambda now: str(now)[:9], PayloadError),
        (lambda now: str(now) + "0", PayloadError),
        (lambda now: "1e9", PayloadError),
        (lambda now: f"{now}.5", PayloadError),
        (lambda now: "+" + str(now)[1:], PayloadError),
        (lambda now: "-" + str(now)[1:], PayloadError),
    ],
)
def test_timestamps_outside_the_window_or_malformed(
    consumer: None, timestamp: Callable[[int], str], error: type[Exception]
) -> None:
    req = request()
    header = req.headers["Authorization"]
    current = header.split('oauth_timestamp="')[1].split('"')[0]
    tampered = header.replace(
        f'oauth_timestamp="{current}"', f'oauth_timestamp="{timestamp(int(time.time()))}"'
    )
    with pytest.raises(error):
        make_verifier().verify(with_header(req, tampered))


def test_unknown_consumer_fails_like_a_bad_signature(consumer: None) -> None:
    verifier = make_verifier()
    with pytest.raises(AuthenticationFailed):
        verifier.verify(request(key="unknown-consumer-key"))
    assert len(verifier.recent) == 0


def test_unknown_consumer_costs_about_as_much_as_a_known_one(consumer: None) -> None:
    verifier = make_verifier()

    def timed(key: str) -> float:
        samples = []
        for _ in range(40):
            req = request(key=key, secret="not-the-secret-000")
            start = time.perf_counter()
            with pytest.raises(AuthenticationFailed):
                verifier.verify(req)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    known, unknown = timed(CONSUMER_KEY), timed("unknown-consumer-key")
    assert 0.5 < unknown / known < 2.0  # the dummy client keeps the same work (no early exit)


@pytest.mark.parametrize("key", ["short", "k" * 129, "' OR 1=1--", "clé-unicode-000", "key with space"])
def test_malformed_consumer_keys_are_rejected(consumer: None, key: str) -> None:
    req = request()
    tampered = req.headers["Authorization"].replace(CONSUMER_KEY, key)
    with pytest.raises(PayloadError):
        make_verifier().verify(with_header(req, tampered))


@pytest.mark.parametrize("nonce", ["", "a" * 129, "a" * 10_000, "abc%00defgh", "abc%0Adefgh", "ünïcödé"])
def test_malformed_nonces_are_rejected(consumer: None, nonce: str) -> None:
    req = request(nonce="goodnonce-12345")
    tampered = req.headers["Authorization"].replace("goodnonce-12345", nonce)
    verifier = make_verifier()
    with pytest.raises((PayloadError, AuthenticationFailed)):
        verifier.verify(with_header(req, tampered))
    assert len(verifier.recent) == 0


@pytest.mark.parametrize(
    "nonce",
    ["a", "abc123", "a" * 128, "q+Z3x/w9Lk0=", "abc'defgh", "abc;--defgh", "with space", "~!@#$%^&*()"],
)
def test_any_printable_ascii_nonce_of_1_to_128_characters_verifies(consumer: None, nonce: str) -> None:
    """RFC 5849 §3.3 sets no alphabet: base64 nonces (dghubble/oauth1 for Go) and short ones verify."""
    assert make_verifier().verify(request(nonce=nonce)).nonce == nonce


def test_controller_formats_pass_despite_oauthlib_defaults(database: pw.Database) -> None:
    create_consumer(key="c4b3510e-a432-4e2c-940c-d151e05b68fg")  # the APS docs example key
    req = request(key="c4b3510e-a432-4e2c-940c-d151e05b68fg", nonce="3f9c0e7d-2b6a-4c1e-8d5f-7a9b0c2e4d6f")
    assert make_verifier().verify(req).key == "c4b3510e-a432-4e2c-940c-d151e05b68fg"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda h: h + ', oauth_nonce="anothernonce-1"',  # duplicate inside the header
        lambda h: h + f', oauth_consumer_key="{CONSUMER_KEY}"',
        lambda h: h.replace('oauth_version="1.0"', 'oauth_version="2.0"'),
        lambda h: h[:-1],  # unterminated quote
        lambda h: h.replace('"', ""),  # unquoted values
        lambda h: h + ', x_custom="1"',
        lambda h: "OAuth " + "x" * 60_000,
        lambda h: h.replace("oauth_signature=", "oauth_sig="),
    ],
)
def test_malformed_authorization_headers_are_400(consumer: None, mutate: Callable[[str], str]) -> None:
    req = request()
    with pytest.raises(PayloadError):
        make_verifier().verify(with_header(req, mutate(req.headers["Authorization"])))


@pytest.mark.parametrize("value", ["", "Bearer abc.def.ghi", 'OAuth realm="x"'])
def test_missing_or_foreign_schemes(consumer: None, value: str) -> None:
    with pytest.raises((AuthenticationFailed, PayloadError)):
        make_verifier().verify(with_header(request(), value))


def test_lowercase_scheme_is_accepted(consumer: None) -> None:
    req = request()
    assert make_verifier().verify(with_header(req, "oauth " + req.headers["Authorization"][6:])).key


def test_access_token_on_two_legged_endpoint_is_401_not_500(consumer: None) -> None:
    req = request()
    with pytest.raises(AuthenticationFailed, match="oauth_token"):
        make_verifier().verify(with_header(req, req.headers["Authorization"] + ', oauth_token="abc12345"'))


def test_oauth_parameters_in_query_and_header_are_400(consumer: None) -> None:
    with pytest.raises(PayloadError):
        make_verifier().verify(request(uri="/callback?oauth_nonce=abcdefgh1234"))


def test_flipped_or_empty_signature_is_401(consumer: None) -> None:
    req = request()
    header = req.headers["Authorization"]
    signature = header.split('oauth_signature="')[1].split('"')[0]
    flipped = ("B" if signature[0] != "B" else "C") + signature[1:]
    with pytest.raises(AuthenticationFailed):
        make_verifier().verify(with_header(req, header.replace(signature, flipped)))
    with pytest.raises(PayloadError):
        make_verifier().verify(with_header(request(), header.replace(signature, "")))


def test_rotation_overlap_and_expiry(consumer: None) -> None:
    old = ConsumerSecret.get()
    ConsumerSecret.create(consumer=old.consumer, secret="new-secret-" + "b" * 40)
    verifier = make_verifier()  # loads the snapshot
    assert verifier.verify(request()).secret_id == old.id  # old secret still valid
    assert verifier.verify(request(secret="new-secret-" + "b" * 40)).secret_id != old.id
    old.not_after = utcnow() - dt.timedelta(seconds=1)
    old.save()
    verifier.reload()  # what the serving process does every endpoint.secrets_refresh seconds
    with pytest.raises(AuthenticationFailed):
        verifier.verify(request())


def test_body_hash_is_checked_when_present(consumer: None) -> None:
    verifier = make_verifier()
    hashed = sign("POST", PUBLIC_URL + "callback", body=BODY)  # oauthlib's Client adds oauth_body_hash
    assert "oauth_body_hash" in hashed["Authorization"]
    assert verified_with_body(verifier, hashed, BODY).key
    tampered = sign("POST", PUBLIC_URL + "callback", body=BODY)
    with pytest.raises(AuthenticationFailed, match="body_hash"):
        verified_with_body(verifier, tampered, b'{"a": 999}')
    empty = sign("POST", PUBLIC_URL + "callback", body=BODY)
    with pytest.raises(AuthenticationFailed, match="body_hash"):
        verified_with_body(verifier, empty, b"")
    unsigned = sign("POST", PUBLIC_URL + "callback")
    assert verified_with_body(verifier, unsigned, b'{"a": 999}').key  # JSON bodies are unsigned by default


def test_body_hash_can_be_mandatory(consumer: None) -> None:
    verifier = make_verifier(require_body_hash=True)
    with pytest.raises(AuthenticationFailed, match="required"):
        verified_with_body(verifier, sign("POST", PUBLIC_URL + "callback"), BODY)
    assert verified_with_body(verifier, sign("POST", PUBLIC_URL + "callback", body=BODY), BODY).key


def test_body_hash_with_a_form_body_is_400(consumer: None) -> None:
    headers = sign("POST", PUBLIC_URL + "callback", body=BODY)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    with pytest.raises(PayloadError):
        verified_with_body(make_verifier(), headers, BODY)


@pytest.mark.parametrize(
    ("public_url", "mount", "uri", "signed_url"),
    [
        ("https://connector.example.com/", "/", "/callback", "https://connector.example.com/callback"),
        ("https://connector.example.com:443/", "/", "/callback", "https://connector.example.com/callback"),
        ("https://connector.example.com/", "/", "/callback", "https://connector.example.com:443/callback"),
        ("https://Connector.Example.com/", "/", "/callback", "https://connector.example.com/callback"),
        ("https://x.example.com/vpsclouds", "/", "/tenants", "https://x.example.com/vpsclouds/tenants"),
        (
            "https://x.example.com/connector/",
            "/connector/",
            "/connector/tenants?b=2&a=1",
            "https://x.example.com/connector/tenants?a=1&b=2",
        ),
        ("https://x.example.com:8443/", "/app/", "/app/r%20v/X", "https://x.example.com:8443/r%20v/X"),
    ],
)
def test_signed_url_is_rebuilt_from_configuration(
    database: pw.Database, public_url: str, mount: str, uri: str, signed_url: str
) -> None:
    create_consumer()
    req = request(uri=uri, signed_url=signed_url)
    verifier = make_verifier(public_base_url=public_url, mount_path=mount)
    assert verifier.verify(req).key == CONSUMER_KEY


@pytest.mark.parametrize(
    ("uri", "signed_url", "error"),
    [
        ("/callback", "http://connector.example.com/callback", AuthenticationFailed),  # scheme
        ("/callback", "https://attacker.example.com/callback", AuthenticationFailed),  # host
        ("/callback", "https://connector.example.com:8443/callback", AuthenticationFailed),  # port
        ("/callback/", "https://connector.example.com/callback", AuthenticationFailed),  # trailing slash
        ("//callback", "https://connector.example.com/callback", AuthenticationFailed),
        ("/./callback", "https://connector.example.com/callback", AuthenticationFailed),
        ("/a%2Fb", "https://connector.example.com/a/b", AuthenticationFailed),
        ("/%7Euser", "https://connector.example.com/~user", AuthenticationFailed),
        ("/callback;p=1", "https://connector.example.com/callback", AuthenticationFailed),
        ("/callback?a=1&a=1", "https://connector.example.com/callback?a=1", AuthenticationFailed),
        ("/callback?a=1&b=2", "https://connector.example.com/callback?a=1", AuthenticationFailed),
        ("/ho\xc3\xb6k", "https://connector.example.com/ho%C3%B6k", AuthenticationFailed),
        (
            "http://connector.example.com/callback",
            "https://connector.example.com/callback",
            AuthenticationFailed,
        ),
        ("/callback?q=<script>", "https://connector.example.com/callback?q=x", PayloadError),
        (
            "/callback?x=%zz",
            "https://connector.example.com/callback?x=1",
            (PayloadError, AuthenticationFailed),
        ),
    ],
)
def test_binding_to_the_public_url(consumer: None, uri: str, signed_url: str, error: object) -> None:
    verifier = make_verifier()
    with pytest.raises(error):  # type: ignore[call-overload]
        verifier.verify(request(uri=uri, signed_url=signed_url))
    assert len(verifier.recent) == 0


def test_method_swap_is_rejected(consumer: None) -> None:
    req = request(method="GET")
    with pytest.raises(AuthenticationFailed):
        make_verifier().verify(InboundRequest("POST", req.uri, req.headers))


def test_requests_outside_the_mount_path_are_rejected(consumer: None) -> None:
    verifier = make_verifier(mount_path="/connector/")
    with pytest.raises(AuthenticationFailed, match="mount"):
        verifier.verify(request(uri="/other/callback", signed_url=PUBLIC_URL + "callback"))


def test_secret_is_never_in_the_failure_reason(consumer: None) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        make_verifier().verify(request(secret="wrong-secret-000000"))
    assert CONSUMER_SECRET not in info.value.reason and "wrong-secret" not in info.value.reason


def test_the_base_string_is_oauthlibs_on_random_input() -> None:
    """The fast path of percent_encode must not change a single base string (RFC 5849 §3.4.1, §3.6)."""
    chooser = random.Random(5849)
    alphabet = string.ascii_letters + string.digits + "._~-" + " !*'();:@&=+$,/?[]%" + "éü€\u2028\x00"

    def text() -> str:
        return "".join(chooser.choice(alphabet) for _ in range(chooser.randint(0, 12)))

    for _ in range(3000):
        pairs = [(text(), text()) for _ in range(chooser.randint(0, 6))]
        uri = "https://Example.COM:443/p/" + text().replace("?", "").replace("#", "")
        method = chooser.choice(["post", "GET", "Put"])
        expected = signature.signature_base_string(
            method.upper(), signature.base_string_uri(uri), signature.normalize_parameters(pairs)
        )
        assert base_string(method, uri, pairs) == expected, (method, uri, pairs)
