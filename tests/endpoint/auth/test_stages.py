"""OAuthStage: the signature verifier runs inside the database runner, off the IOLoop thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import peewee as pw
import pytest

from endpoint.auth.identity import VerifiedConsumer
from endpoint.auth.oauth import InboundRequest, SignatureVerifier
from endpoint.auth.stages import OAuthStage
from endpoint.errors import AuthenticationFailed, PayloadError
from endpoint.executors import DatabaseRunner
from endpoint.settings import EndpointSettings
from models import Nonce, db
from tests.factories import CONSUMER_KEY, PUBLIC_URL, create_consumer, sign


class RecordingVerifier(SignatureVerifier):
    """The real verifier, noting where each call ran."""

    calls: list[tuple[threading.Thread, bool]]

    def verify(self, request: InboundRequest) -> VerifiedConsumer:
        self.calls.append((threading.current_thread(), not db.is_closed()))
        return super().verify(request)


@pytest.fixture
def runner(database: pw.Database) -> Iterator[DatabaseRunner]:
    create_consumer()
    runner = DatabaseRunner(2)
    yield runner
    runner.shutdown()


@pytest.fixture
def verifier() -> RecordingVerifier:
    verifier = RecordingVerifier(EndpointSettings(public_base_url=PUBLIC_URL))
    verifier.calls = []
    return verifier


def signed(**sign_kwargs: str) -> InboundRequest:
    headers = sign("POST", PUBLIC_URL + "callback", **sign_kwargs)
    return InboundRequest("POST", "/callback", headers, b"{}")


def verify_on_loop(stage: OAuthStage, request: InboundRequest) -> tuple[threading.Thread, VerifiedConsumer]:
    async def main() -> tuple[threading.Thread, VerifiedConsumer]:
        return threading.current_thread(), await stage.verify(request)

    return asyncio.run(main())


def test_a_valid_request_verifies_off_the_loop(runner: DatabaseRunner, verifier: RecordingVerifier) -> None:
    loop_thread, consumer = verify_on_loop(OAuthStage(verifier, runner), signed())
    assert consumer == VerifiedConsumer(key=CONSUMER_KEY, secret_id=consumer.secret_id)
    [(thread, connection_open)] = verifier.calls
    assert thread is not loop_thread and thread.name.startswith("db")
    assert connection_open  # inside the runner's unit of work
    assert Nonce.select().count() == 1


@pytest.mark.parametrize(
    ("request_kwargs", "error"),
    [({"secret": "wrong-secret-0000000"}, AuthenticationFailed), ({"nonce": "bad.nonce!"}, PayloadError)],
)
def test_an_invalid_request_raises(
    runner: DatabaseRunner,
    verifier: RecordingVerifier,
    request_kwargs: dict[str, str],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        verify_on_loop(OAuthStage(verifier, runner), signed(**request_kwargs))
    assert len(verifier.calls) == 1  # the stage delegated; the verifier decided
    assert Nonce.select().count() == 0


def test_a_replay_through_the_stage_is_rejected(runner: DatabaseRunner, verifier: RecordingVerifier) -> None:
    stage = OAuthStage(verifier, runner)
    request = signed()
    verify_on_loop(stage, request)
    with pytest.raises(AuthenticationFailed, match="replay"):
        verify_on_loop(stage, request)
