"""The outbound holder: the one build_session() session, built lazily; controller clients share it."""

from __future__ import annotations

import pytest

from endpoint.aps.outbound import Outbound
from proxy.errors import ConnectorConfigError
from proxy.session import ProxySession, ProxySettings
from tests.support.aps_builders import aps_settings


def test_the_session_is_built_once_on_first_use() -> None:
    outbound = Outbound(ProxySettings(url="http://proxy.internal:3128"), aps_settings(), {})
    try:
        session = outbound.session()
        assert isinstance(session, ProxySession) and session.trust_env is False
        assert session.proxies == {
            "http": "http://proxy.internal:3128",
            "https": "http://proxy.internal:3128",
        }
        assert outbound.session() is session
        client = outbound.controller("https://apsc.example.net:6308/", "k" * 10, "s" * 10)
        assert client.session is session
        assert client.settings is outbound.aps  # [aps] reaches the client as it is, no copy
    finally:
        outbound.close()


def test_a_missing_proxy_password_fails_the_call_not_the_process() -> None:
    settings = ProxySettings(url="http://proxy.internal:3128", username="u", password_env="NOPE")
    outbound = Outbound(settings, aps_settings(), {})  # no exception: the process still starts
    try:
        with pytest.raises(ConnectorConfigError):
            outbound.session()
    finally:
        outbound.close()
