"""explain(): which failures a person can act on, with which exit code; anything else stays a bug."""

from __future__ import annotations

import peewee as pw
import pytest
import requests

from endpoint.commands.problems import CONFIGURATION, ENVIRONMENT, describe_request_error, explain
from endpoint.config.loader import ConfigError
from proxy.errors import ConnectorConfigError, ProxyFailure, TransportError
from tests.support.builders import make_settings

SETTINGS = make_settings()


@pytest.mark.parametrize(
    ("error", "code", "text"),
    [
        (ConfigError("server.port: must be 0..65535"), CONFIGURATION, "server.port"),
        (ConnectorConfigError("proxy.password_env: PROXY_PW is not set"), CONFIGURATION, "PROXY_PW"),
        (ValueError("--instance-id 'x': must be a UUID"), CONFIGURATION, "--instance-id"),
        (pw.OperationalError("database is locked"), ENVIRONMENT, "database.url ("),
        (ProxyFailure("http://proxy:3128", "refused"), ENVIRONMENT, "outbound proxy http://proxy:3128"),
        (TransportError("acronis dc: connect timed out"), ENVIRONMENT, "connect timed out"),
        (
            FileNotFoundError(2, "No such file or directory", "/etc/ca.pem"),
            ENVIRONMENT,
            "/etc/ca.pem: No such",
        ),
    ],
)
def test_known_failures(error: BaseException, code: int, text: str) -> None:
    problem = explain(error, SETTINGS)
    assert problem is not None and problem.exit_code == code and text in problem.message


@pytest.mark.parametrize("error", [KeyError("x"), AttributeError("y"), OSError("no filename")])
def test_anything_else_is_a_bug_with_its_traceback(error: BaseException) -> None:
    assert explain(error, SETTINGS) is None


def _request_error(cls: type[requests.RequestException], text: str) -> requests.RequestException:
    return cls(text, request=requests.Request("GET", "https://apsc.example:6308/aps/2/x").prepare())


@pytest.mark.parametrize(
    ("cls", "text", "expected"),
    [
        (requests.exceptions.SSLError, "[SSL: CERTIFICATE_VERIFY_FAILED]", "pass the server's CA (--ca"),
        (requests.exceptions.SSLError, "[SSL: WRONG_VERSION_NUMBER]", "TLS handshake failed"),
        (requests.ConnectTimeout, "timed out", "connect timed out"),
        (requests.ReadTimeout, "read timed out", "no answer in time"),
        (requests.ConnectionError, "[Errno 111] Connection refused", "connection refused"),
        (requests.ConnectionError, "[Errno -2] Name or service not known", "unknown host"),
    ],
)
def test_http_failures_name_the_host_and_the_fix(
    cls: type[requests.RequestException], text: str, expected: str
) -> None:
    message = describe_request_error(_request_error(cls, text))
    assert message.startswith("apsc.example:6308: ") and expected in message
