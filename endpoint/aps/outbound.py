"""The outbound side of the APS services: the process's one session (built lazily) and its thread pool."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import requests

from endpoint.aps.settings import ApsSettings
from proxy.controller import ControllerClient
from proxy.session import ProxySettings, build_session

log = logging.getLogger(__name__)


class Outbound:
    """Controller clients share ``build_session()``'s session: configured proxy only, CA bundle, timeouts.

    The session is built on first use so a serving process without outbound configuration still starts;
    a missing proxy password then fails the call (ConnectorConfigError), never the process.
    """

    def __init__(
        self,
        proxy: ProxySettings,
        aps: ApsSettings,
        environ: Mapping[str, str],
        session: requests.Session | None = None,
    ) -> None:
        self.proxy = proxy
        self.aps = aps  # the controller clients read their call settings from it
        self.environ = environ
        self._session = session
        self._lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=aps.outbound_threads, thread_name_prefix="aps-out")

    def session(self) -> requests.Session:
        """:raise ConnectorConfigError: the proxy password variable is unset."""
        with self._lock:
            if self._session is None:
                self._session = build_session(self.proxy, self.environ)
            return self._session

    def controller(self, controller_uri: str, key: str, secret: str) -> ControllerClient:
        return ControllerClient(self.session(), controller_uri, key, secret, self.aps)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        with self._lock:
            if self._session is not None:
                self._session.close()
