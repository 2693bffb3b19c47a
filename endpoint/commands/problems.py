"""What a command tells a person when it fails: one or two lines and an exit code, never a traceback.

Exit code 2: the configuration or the command line is wrong (fix a setting or a flag). Exit code 1: the
environment is (a database, proxy or controller that cannot be reached, a missing file). An error not
recognised here is a bug: the command line shows its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import peewee as pw
import requests

from endpoint.config.loader import ConfigError
from endpoint.config.settings import Settings
from models.diagnose import describe_database_error
from proxy.errors import ConnectorConfigError, ConnectorError

CONFIGURATION = 2
ENVIRONMENT = 1


@dataclass(frozen=True, slots=True)
class Problem:
    message: str
    exit_code: int


def explain(error: BaseException, settings: Settings) -> Problem | None:
    """The problem ``error`` reports, or None when it is not one a person can fix (a bug)."""
    if isinstance(error, ConfigError | ConnectorConfigError):
        return Problem(str(error), CONFIGURATION)
    if isinstance(error, pw.PeeweeException):
        return Problem(describe_database_error(error, settings.database.url), ENVIRONMENT)
    if isinstance(error, ConnectorError):
        return Problem(str(error), ENVIRONMENT)
    if isinstance(error, requests.RequestException):
        return Problem(describe_request_error(error), ENVIRONMENT)
    if isinstance(error, OSError) and error.filename:
        return Problem(f"{error.filename}: {error.strerror or type(error).__name__}", ENVIRONMENT)
    if isinstance(error, ValueError):  # the commands raise it for a refused argument, with the reason
        return Problem(str(error), CONFIGURATION)
    return None


def describe_request_error(error: requests.RequestException) -> str:
    """A failed HTTP call as ``<host>: <reason>: <fix>``."""
    url = getattr(error.request, "url", None) or ""
    host = urlsplit(url).netloc or "the server"
    if isinstance(error, requests.exceptions.SSLError):
        text = str(error)
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return (
                f"{host}: TLS certificate not trusted: pass the server's CA (--ca-bundle / proxy.ca_bundle)"
            )
        return f"{host}: TLS handshake failed: is it an https:// server on that port?"
    if isinstance(error, requests.ConnectTimeout):
        return f"{host}: connect timed out: is the host reachable from here (or through the proxy)?"
    if isinstance(error, requests.Timeout):
        return f"{host}: no answer in time: the server is slow or stuck; retry, or raise the timeout"
    if isinstance(error, requests.ConnectionError):
        text = str(error)
        if "Name or service not known" in text or "nodename nor servname" in text:
            return f"{host}: unknown host: fix the URL"
        if "Connection refused" in text:
            return f"{host}: connection refused: is the server running on that port?"
        return f"{host}: cannot connect ({type(error).__name__})"
    return f"{host}: {type(error).__name__}"
