"""The single outbound requests.Session: configured proxy only, explicit CA, timeouts, and no retries.

The session never retries (urllib3's Retry is off): a retry below the clients would multiply theirs
(3 urllib3 tries x 4 client tries = 16 connection attempts on a dead port) and resend signed requests
verbatim. The one in-call retry loop is proxy/transport.py's ``retrying``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from urllib3.connection import HTTPConnection

from proxy.errors import DirectEgressRefused, ProxyFailure, SecretNotSet

log = logging.getLogger(__name__)

PRODUCT = "acronis-aps-connector"


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Where outbound traffic goes and how it is trusted; secrets are named by ``*_env``, never stored."""

    url: str | None = (
        None  # "http://proxy.example:3128" (CONNECT tunnels) or "https://..." (TLS to the proxy)
    )
    username: str | None = None
    password_env: str | None = None  # environment variable holding the proxy password
    no_proxy: tuple[str, ...] = ()  # hosts reached directly; only allowed with require_proxy = false
    require_proxy: bool = True  # with a proxy configured, nothing may ever be sent directly
    ca_bundle: str | None = None  # replaces certifi (e.g. the mitmproxy CA); None: the system default
    client_cert: str | None = None
    client_key: str | None = None
    connect_timeout: float = 3.05
    read_timeout: float = 20.0
    pool_maxsize: int = 10

    def __post_init__(self) -> None:
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("url: must be http://host:port or https://host:port")
            if parts.password is not None:
                raise ValueError("url: no password in the URL; name its variable in password_env")
            if parts.username and self.username:
                raise ValueError("username: given twice (in url and in username)")
            if parts.path not in ("", "/") or parts.query or parts.fragment:
                raise ValueError("url: must not carry a path, query or fragment")
            if self.no_proxy and self.require_proxy:
                raise ValueError("no_proxy: not allowed while require_proxy is on")
        if self.password_env and not (self.username or (self.url and urlsplit(self.url).username)):
            raise ValueError("password_env: needs a username")
        if self.client_key and not self.client_cert:
            raise ValueError("client_key: needs client_cert")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("connect_timeout/read_timeout: must be > 0")
        if self.pool_maxsize < 1:
            raise ValueError("pool_maxsize: must be >= 1")

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)

    @property
    def display_url(self) -> str | None:
        """The proxy URL without any credentials: safe for logs and error messages."""
        if self.url is None:
            return None
        parts = urlsplit(self.url)
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, "", "", ""))

    def proxy_url(self, environ: Mapping[str, str]) -> str | None:
        """The URL handed to requests, credentials percent-encoded (requests decodes them again).

        :raise SecretNotSet: when ``password_env`` names an unset variable.
        """
        if self.url is None:
            return None
        parts = urlsplit(self.url)
        user = self.username if self.username is not None else parts.username
        if not user:
            return self.display_url
        userinfo = quote(user, safe="")
        if self.password_env:
            password = environ.get(self.password_env)
            if password is None:
                raise SecretNotSet("proxy.password_env", self.password_env)
            userinfo += ":" + quote(password, safe="")
        return f"{parts.scheme}://{userinfo}@{(self.display_url or '').split('://', 1)[1]}"


class ProxySession(requests.Session):
    """A Session whose routing, trust and timeouts cannot be overridden per call or by the environment."""

    def __init__(self, settings: ProxySettings, proxy_url: str | None) -> None:
        super().__init__()
        self.trust_env = False  # environment proxies, CA variables and ~/.netrc never apply (§10.2)
        self.settings = settings
        self._proxy_url = proxy_url
        self.proxies = {"http": proxy_url, "https": proxy_url} if proxy_url else {}
        self.verify = settings.ca_bundle or True
        if settings.client_cert:
            self.cert = (
                (settings.client_cert, settings.client_key) if settings.client_key else settings.client_cert
            )

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        # Belt and braces on top of trust_env=False: the environment is never consulted.
        return {"proxies": self.proxies, "stream": stream, "verify": self.verify, "cert": self.cert}

    def should_strip_auth(self, old_url: str, new_url: str) -> bool:
        """Any change of origin drops Authorization, including requests' http->https exception."""
        old, new = urlsplit(old_url), urlsplit(new_url)
        return (old.scheme, old.hostname, old.port) != (new.scheme, new.hostname, new.port)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        proxies = self._route(url)
        kwargs["proxies"] = proxies
        kwargs["verify"] = self.verify  # a caller cannot downgrade to verify=False
        kwargs["cert"] = self.cert
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.settings.timeout
        proxy = select_proxy(url, proxies) if proxies else None
        name = self.settings.display_url or "proxy"
        if proxy is None:
            if self._proxy_url and self.settings.require_proxy:
                raise DirectEgressRefused(name, f"direct connection to {urlsplit(url).hostname} refused")
            return super().send(request, **kwargs)
        try:
            response = super().send(request, **kwargs)
        except requests.exceptions.ProxyError as e:
            raise ProxyFailure(name, describe_proxy_error(e)) from e
        except requests.exceptions.SSLError as e:
            raise ProxyFailure(name, f"TLS verification failed through the proxy ({_ssl_reason(e)})") from e
        if response.status_code == 407:  # absolute-form (http://) requests see the proxy's answer directly
            response.close()
            raise ProxyFailure(name, "proxy authentication required (407)")
        return response

    def _route(self, url: str) -> dict[str, str]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise DirectEgressRefused(self.settings.display_url or "none", f"scheme {parts.scheme!r} refused")
        if not self._proxy_url:
            return {}
        host = (parts.hostname or "").lower()
        if not self.settings.require_proxy and _bypassed(host, self.settings.no_proxy):
            return {}
        return {"http": self._proxy_url, "https": self._proxy_url}


def _bypassed(host: str, no_proxy: tuple[str, ...]) -> bool:
    for entry in no_proxy:
        entry = entry.strip().lower().lstrip(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


def describe_proxy_error(error: BaseException) -> str:
    """A short cause for a requests ProxyError, without URLs or credentials."""
    text = _chain_text(error)
    if "refused" in text.lower():
        return "connection to the proxy refused"
    if "Tunnel connection failed: 407" in text or "Proxy Authentication Required" in text:
        return "proxy authentication required (407)"
    if "timed out" in text.lower():
        return "connection to the proxy timed out"
    if "Tunnel connection failed" in text:
        status = text.split("Tunnel connection failed:", 1)[1].split("'")[0].split('"')[0].strip()
        return f"the proxy refused the tunnel ({status})"
    if "SSL" in text or "certificate" in text.lower():
        return f"TLS to the proxy failed ({_ssl_reason(error)})"
    return "the proxy could not be used (connection failed)"


def _ssl_reason(error: BaseException) -> str:
    text = _chain_text(error)
    for marker in ("CERTIFICATE_VERIFY_FAILED", "WRONG_VERSION_NUMBER", "hostname mismatch", "UNKNOWN_CA"):
        if marker in text:
            detail = "certificate not trusted: is ca_bundle the proxy's CA?" if "VERIFY" in marker else marker
            return detail
    return "handshake failed"


def _chain_text(error: BaseException) -> str:
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(str(current))
        parts.extend(str(a) for a in getattr(current, "args", ()) if isinstance(a, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            parts.append(repr(reason))
        current = current.__cause__ or current.__context__
    return " | ".join(parts)


def user_agent() -> str:
    try:
        version = metadata.version(PRODUCT)
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    return f"{PRODUCT}/{version} (Vendor Connector; python-requests/{requests.__version__})"


class ProxyAdapter(HTTPAdapter):
    """HTTPAdapter that keeps TCP_NODELAY on proxy connections.

    urllib3 turns Nagle back on for proxied pools ("to avoid packet fragmentation"). http.client writes a
    POST's head and body separately, so the body then waits for the delayed ACK of the head: ~40 ms per
    request through a CONNECT tunnel. With NODELAY a tunnelled call costs about what a direct one does.
    """

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs.setdefault("socket_options", list(HTTPConnection.default_socket_options))
        return super().proxy_manager_for(proxy, **proxy_kwargs)


def build_session(settings: ProxySettings, environ: Mapping[str, str]) -> requests.Session:
    """The process-wide outbound session.

    :raise SecretNotSet: when the proxy password variable is unset.
    """
    session = ProxySession(settings, settings.proxy_url(environ))
    adapter = ProxyAdapter(
        max_retries=0,  # never: see the module docstring
        pool_connections=4,
        pool_maxsize=settings.pool_maxsize,
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.max_redirects = 3
    session.headers["User-Agent"] = user_agent()
    log.info(
        "outbound session: proxy=%s require_proxy=%s ca_bundle=%s timeout=%s",
        settings.display_url or "none (direct)",
        settings.require_proxy,
        settings.ca_bundle or "system",
        settings.timeout,
    )
    return session
