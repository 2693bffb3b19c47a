"""[acronis_jwt] on its own (the load-time rules with key paths: tests/endpoint/config/test_settings.py)."""

from __future__ import annotations

import pytest

from endpoint.auth.jwt_settings import (
    ENDPOINT_ID_PREFIXES,
    AcronisJwtSettings,
    callback_auth_error,
    check_callback_auth,
)


def test_defaults_are_valid_while_the_scheme_is_off() -> None:
    settings = AcronisJwtSettings()
    assert settings.endpoint_ids == () and check_callback_auth(("oauth1",), settings) is None


@pytest.mark.parametrize("prefix", ENDPOINT_ID_PREFIXES)
def test_both_endpoint_forms_are_taken(prefix: str) -> None:
    settings = AcronisJwtSettings(endpoint_ids=(prefix + "vendor.app.endpoint.v1.0",))
    assert check_callback_auth(("acronis_jwt",), settings) is None


def test_the_scheme_needs_endpoint_ids() -> None:
    assert check_callback_auth(("oauth1", "acronis_jwt"), AcronisJwtSettings()) == (
        "acronis_jwt.endpoint_ids: required when endpoint.callback_auth lists acronis_jwt"
    )


@pytest.mark.parametrize(
    ("schemes", "ok"),
    [(("oauth1",), True), (("acronis_jwt", "oauth1"), True), ((), False), (("oauth1", "oauth1"), False)],
)
def test_callback_auth_error(schemes: tuple[str, ...], ok: bool) -> None:
    assert (callback_auth_error(schemes) is None) is ok
