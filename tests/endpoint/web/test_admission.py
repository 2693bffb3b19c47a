"""The header-phase checks both kinds of route share, in their order."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from tornado.httputil import HTTPHeaders

from endpoint.auth.identity import VerifiedConsumer
from endpoint.auth.oauth import InboundRequest
from endpoint.auth.stages import Stages
from endpoint.errors import AuthenticationFailed, PayloadError, TooLarge, Unavailable
from endpoint.web.admission import admit, check_framing, require_json_content_type
from endpoint.web.limits import BodyBudget
from tests.support.builders import make_settings


def headers(*pairs: tuple[str, str]) -> HTTPHeaders:
    result = HTTPHeaders()
    for name, value in pairs:
        result.add(name, value)
    return result


@pytest.mark.parametrize(
    ("pairs", "error"),
    [
        ((("Authorization", "a"), ("Authorization", "b")), PayloadError),
        ((("X-CyberApp-Auth", "a"), ("X-CyberApp-Auth", "a")), PayloadError),
        ((("Content-Length", "12a"),), PayloadError),
        ((("Content-Length", "²"),), PayloadError),
        ((("Content-Length", "1" * 16),), PayloadError),
        ((("Content-Length", "101"),), TooLarge),
    ],
)
def test_framing_refusals(pairs: tuple[tuple[str, str], ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        check_framing(headers(*pairs), limit=100)


def test_framing_returns_the_declared_length_or_none_when_chunked() -> None:
    assert check_framing(headers(("Content-Length", "100")), limit=100) == 100
    assert check_framing(headers(("Transfer-Encoding", "chunked")), limit=100) is None


@pytest.mark.parametrize(
    "value", ["application/json", "Application/JSON; charset=utf-8", " application/json ;x=1"]
)
def test_json_content_types(value: str) -> None:
    require_json_content_type({"Content-Type": value})


@pytest.mark.parametrize(
    "value", ["", "text/plain", "application/json-patch+json", "application/x-www-form-urlencoded"]
)
def test_other_content_types_are_400(value: str) -> None:
    with pytest.raises(PayloadError) as refused:
        require_json_content_type({"Content-Type": value})
    assert refused.value.message == "Malformed request: Content-Type must be application/json."


class Stage:
    scheme = "test"

    def __init__(self) -> None:
        self.seen: list[InboundRequest] = []

    def verify(self, request: InboundRequest) -> VerifiedConsumer:
        self.seen.append(request)
        if request.headers.get("Authorization") != "Test ok":
            raise AuthenticationFailed(reason="test")
        return VerifiedConsumer(key="k", secret_id=1)

    def check_body(self, consumer: VerifiedConsumer, body: bytes, content_type: str) -> None:
        pass


def runtime(budget: int) -> SimpleNamespace:
    return SimpleNamespace(
        settings=make_settings(endpoint={"max_body_size": 2048}), bodies=BodyBudget(budget)
    )


def test_admit_verifies_then_reserves_the_declared_length() -> None:
    stage, rt = Stage(), runtime(4000)
    admitted = admit(rt, Stages((stage,)), "POST", "/x?a=1", headers(("Authorization", "Test ok")), 120)  # type: ignore[arg-type]
    assert (admitted.consumer.key, admitted.reserved, rt.bodies.reserved) == ("k", 120, 120)
    assert stage.seen[0].uri == "/x?a=1"  # the raw target, as signed


def test_admit_reserves_the_whole_limit_for_a_chunked_body_and_nothing_for_none() -> None:
    rt, auth = runtime(4000), headers(("Authorization", "Test ok"))
    stages = Stages((Stage(),))  # type: ignore[arg-type]
    assert admit(rt, stages, "POST", "/", auth, None).reserved == 2048  # type: ignore[arg-type]
    assert admit(rt, stages, "POST", "/", auth, 0).reserved == 0  # type: ignore[arg-type]
    assert rt.bodies.reserved == 2048


def test_an_unverified_request_reserves_nothing() -> None:
    rt = runtime(4000)
    with pytest.raises(AuthenticationFailed):
        admit(rt, Stages((Stage(),)), "POST", "/", headers(("Authorization", "Test no")), 100)  # type: ignore[arg-type]
    assert rt.bodies.reserved == 0


def test_a_full_budget_refuses_with_503() -> None:
    rt = runtime(150)
    admit(rt, Stages((Stage(),)), "POST", "/", headers(("Authorization", "Test ok")), 100)  # type: ignore[arg-type]
    with pytest.raises(Unavailable):
        admit(rt, Stages((Stage(),)), "POST", "/", headers(("Authorization", "Test ok")), 100)  # type: ignore[arg-type]
    assert rt.bodies.reserved == 100
