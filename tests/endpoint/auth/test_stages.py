"""Stages: one transport stage picked by the Authorization scheme, one size cap, no fallback, no repeats."""

from __future__ import annotations

import pytest

from endpoint.auth.identity import VerifiedConsumer
from endpoint.auth.oauth import InboundRequest
from endpoint.auth.stages import MAX_AUTHORIZATION_BYTES, SINGLETON_HEADERS, Stages, reject_repeated
from endpoint.errors import AuthenticationFailed, PayloadError


class FakeStage:
    """A transport stage that records what it saw and fails when told to."""

    def __init__(self, scheme: str, fail: bool = False) -> None:
        self.scheme = scheme
        self.fail = fail
        self.seen: list[str] = []

    def verify(self, request: InboundRequest) -> VerifiedConsumer:
        self.seen.append(request.headers["Authorization"])
        if self.fail:
            raise AuthenticationFailed(reason=f"{self.scheme} rejected")
        return VerifiedConsumer(key=self.scheme + "-principal", secret_id=1)

    def check_body(self, consumer: VerifiedConsumer, body: bytes, content_type: str) -> None:
        pass


def request(authorization: str | None) -> InboundRequest:
    headers = {} if authorization is None else {"Authorization": authorization}
    return InboundRequest("POST", "/callback", headers)


def test_the_scheme_picks_the_stage_case_insensitively() -> None:
    oauth, bearer = FakeStage("oauth"), FakeStage("bearer")
    stages = Stages((oauth, bearer))
    stage, consumer = stages.verify_transport(request('OAuth oauth_nonce="x"'))
    assert stage is oauth and consumer.key == "oauth-principal"
    stage, _ = stages.verify_transport(request("bearer abc.def.ghi"))
    assert stage is bearer and oauth.seen == ['OAuth oauth_nonce="x"']


def test_a_failed_stage_never_falls_back_to_another() -> None:
    oauth, bearer = FakeStage("oauth", fail=True), FakeStage("bearer")
    with pytest.raises(AuthenticationFailed, match="oauth rejected"):
        Stages((oauth, bearer)).verify_transport(request("OAuth x"))
    assert bearer.seen == []


@pytest.mark.parametrize("value", [None, "", "Bearer abc", "Basic dXNlcjpwYXNz", "OAuthx y"])
def test_no_or_an_unaccepted_scheme_is_401(value: str | None) -> None:
    oauth = FakeStage("oauth")
    with pytest.raises(AuthenticationFailed):
        Stages((oauth,)).verify_transport(request(value))
    assert oauth.seen == []


def test_one_size_cap_before_any_stage_parses() -> None:
    oauth = FakeStage("oauth")
    stages = Stages((oauth,))
    at_cap = "OAuth " + "x" * (MAX_AUTHORIZATION_BYTES - 6)
    stages.verify_transport(request(at_cap))
    with pytest.raises(PayloadError, match="size cap"):
        stages.verify_transport(request(at_cap + "x"))
    assert len(oauth.seen) == 1


@pytest.mark.parametrize("name", SINGLETON_HEADERS)
def test_a_repeated_singleton_header_is_400(name: str) -> None:
    reject_repeated({name: ["one"]})
    with pytest.raises(PayloadError, match=name):
        reject_repeated({name: ["one", "two"]})
