"""The outbound error family: everything proxy/ raises derives from ConnectorError."""

from __future__ import annotations


class ConnectorError(Exception):
    """Root of every outbound failure; messages never carry a secret, token or credential."""


class ConnectorConfigError(ConnectorError):
    """Outbound configuration is unusable (a secret variable is unset, a datacenter is not configured)."""


class SecretNotSet(ConnectorConfigError):
    """A setting names an environment variable for a secret, and the variable is not set.

    The one error for every ``*_env`` secret (proxy password, Acronis client secrets): callers catch one type.
    """

    def __init__(self, setting: str, variable: str, what: str = "") -> None:
        self.setting = setting
        self.variable = variable
        detail = f" ({what})" if what else ""
        super().__init__(
            f"{setting}: variable {variable}{detail} is not set; export it in the service's environment"
        )


class ProxyFailure(ConnectorError):
    """The configured forward proxy refused, failed or could not be trusted.

    ``proxy`` is the proxy URL without credentials; ``cause`` is a short human reason. There is never a
    fallback to a direct connection or to ``verify=False`` after one of these.
    """

    def __init__(self, proxy: str, cause: str) -> None:
        self.proxy = proxy
        self.cause = cause
        super().__init__(f"outbound proxy {proxy}: {cause}")


class DirectEgressRefused(ProxyFailure):
    """A request would have left without the proxy while ``require_proxy`` is on."""


class TransportError(ConnectorError):
    """No usable HTTP response: connection refused/reset, DNS, TLS or a timeout (not proxy-specific)."""


class TransportTimeout(TransportError):
    """Connect or read timeout; a POST may or may not have reached the server (at-least-once)."""


class AuthFailure(ConnectorError):
    """The datacenter rejected our client credentials or a freshly minted token (hard error)."""


class ApiError(ConnectorError):
    """The API answered with an error status; ``body`` is the truncated response text (opaque)."""

    def __init__(
        self, message: str, *, status: int, body: str = "", retry_after: float | None = None
    ) -> None:
        self.status = status
        self.body = body
        self.retry_after = retry_after
        super().__init__(message)


class ApiRejected(ApiError):
    """A 4xx that retrying cannot fix (payload or URL error): dead-letter material."""


class ApiUnavailable(ApiError):
    """408/429/5xx (or a transport failure) still failing when the bounded retry cycle ran out."""


class Interrupted(ConnectorError):
    """A retry wait was cut short by a stop request; nothing more was sent."""
