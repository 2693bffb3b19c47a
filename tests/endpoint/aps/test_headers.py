"""APS headers: the controller URI rules, instance id, phase and a loggable transaction id."""

from __future__ import annotations

import pytest

from endpoint.aps.headers import allowed, controller_base, parse_aps_headers, transaction_id
from endpoint.errors import PayloadError
from tests.support.aps_builders import CONTROLLER_URI, INSTANCE_ID, aps_settings


def values(**overrides: str | list[str] | None) -> dict[str, list[str]]:
    base: dict[str, str | list[str] | None] = {
        "APS-Instance-ID": INSTANCE_ID,
        "APS-Controller-URI": CONTROLLER_URI,
        "APS-Transaction-ID": "b2c3d4e5-0000-4000-8000-000000000001",
    }
    base.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return {k: ([v] if isinstance(v, str) else list(v)) for k, v in base.items() if v is not None}


def test_a_complete_set_parses() -> None:
    parsed = parse_aps_headers(values(), aps_settings())
    assert parsed.instance_id == INSTANCE_ID
    assert parsed.controller_uri == CONTROLLER_URI
    assert parsed.phase == "sync"
    assert parsed.transaction_id == "b2c3d4e5-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://APSC.Example.NET:6308", "https://apsc.example.net:6308/"),
        ("https://apsc.example.net:443/aps", "https://apsc.example.net/aps/"),
        ("https://apsc.example.net/a/b/", "https://apsc.example.net/a/b/"),
        ("https://[::1]:6308/", "https://[::1]:6308/"),
    ],
)
def test_controller_uris_are_normalized_with_a_trailing_slash(uri: str, expected: str) -> None:
    assert controller_base(uri, development_mode=False) == expected


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"APS_Instance_ID": None}, "APS-Instance-ID header is required"),
        ({"APS_Instance_ID": "not-a-uuid"}, "APS-Instance-ID must be a UUID"),
        ({"APS_Instance_ID": [INSTANCE_ID, INSTANCE_ID]}, "APS-Instance-ID header is repeated"),
        ({"APS_Controller_URI": None}, "APS-Controller-URI header is required"),
        ({"APS_Controller_URI": "http://apsc.example.net:6308/"}, "must be https://"),
        ({"APS_Controller_URI": "/aps/2/"}, "absolute https:// URL"),
        ({"APS_Controller_URI": "ftp://apsc.example.net/"}, "absolute https:// URL"),
        ({"APS_Controller_URI": "https://user:pw@apsc.example.net/"}, "credentials"),
        ({"APS_Controller_URI": "https://apsc.example.net/?next=evil"}, "query"),
        ({"APS_Controller_URI": "https://apsc.example.net:99999/"}, "not a valid URL"),
        ({"APS_Controller_URI": "https://apsc.example.net/\r\nX: y"}, "printable ASCII"),
        ({"APS_Request_Phase": "later"}, "APS-Request-Phase must be sync or async"),
    ],
)
def test_missing_or_malformed_headers_are_400(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_aps_headers(values(**overrides), aps_settings())  # type: ignore[arg-type]
    assert fragment in caught.value.message


def test_http_controllers_only_in_development_mode() -> None:
    plain = values(APS_Controller_URI="http://127.0.0.1:8080")
    assert (
        parse_aps_headers(plain, aps_settings(development_mode=True)).controller_uri
        == "http://127.0.0.1:8080/"
    )


def test_the_allowlist_is_matched_on_the_normalized_uri() -> None:
    settings = aps_settings(controller_allowlist=("https://*.example.net:6308/",))
    assert parse_aps_headers(values(APS_Controller_URI="https://APSC.example.net:6308"), settings)
    with pytest.raises(PayloadError) as caught:
        parse_aps_headers(values(APS_Controller_URI="https://apsc.attacker.test:6308/"), settings)
    assert "not an allowed controller" in caught.value.message
    assert allowed("https://anything/", ())


def test_async_phase_is_case_insensitive() -> None:
    assert parse_aps_headers(values(APS_Request_Phase="Async"), aps_settings()).phase == "async"


@pytest.mark.parametrize("value", ["a b", "x" * 129, "tx\nforged=1", "é"])
def test_transaction_ids_that_could_forge_log_lines_are_dropped(value: str) -> None:
    assert transaction_id([value]) is None


def test_transaction_id_needs_exactly_one_value() -> None:
    assert transaction_id(["a", "b"]) is None
    assert transaction_id([]) is None
    assert transaction_id(["tx-1"]) == "tx-1"
