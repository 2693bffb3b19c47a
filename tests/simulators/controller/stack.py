"""The end-to-end rig: controller simulator (TLS) <-> proxies <-> a real endpoint, all in-process.

controller -> APS/inbound proxy (absolute-form) -> endpoint, and endpoint -> egress proxy (CONNECT) ->
controller simulator, whose independent verifier checks every callback signature.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from endpoint.aps.settings import ApsSettings
from endpoint.config.settings import Settings
from models.db import DatabaseSettings
from proxy.session import ProxySettings
from simulators.controller.scenarios import ScenarioRun
from simulators.controller.server import ControllerServer
from simulators.controller.signing import ControllerSigner, Instance
from simulators.forward_proxy import ForwardProxy
from tests.support.aps_builders import FAST
from tests.support.builders import CONSUMER_KEY, CONSUMER_SECRET, PUBLIC_URL, make_settings
from tests.support.live_endpoint import LiveEndpoint, live_endpoint
from tests.support.simulator_processes import Tls

ACCOUNT_ID = "acc00000-0000-4000-8000-000000000001"


@dataclass
class Rig:
    controller: ControllerServer
    inbound_proxy: ForwardProxy  # the APS proxy's outbound side + our inbound proxy, as one hop
    egress_proxy: ForwardProxy
    settings: Settings
    tmp: Path
    secret: str = CONSUMER_SECRET
    signers: list[ControllerSigner] = field(default_factory=list)

    def signer(self, live: LiveEndpoint, secret: str | None = None) -> ControllerSigner:
        instance = Instance(PUBLIC_URL, CONSUMER_KEY, secret or self.secret)
        signer = ControllerSigner(
            instance, connect_to=live.base_url, proxy=self.inbound_proxy.url, timeout=10
        )
        self.signers.append(signer)
        return signer

    def run(self, live: LiveEndpoint, state: dict[str, Any], secret: str | None = None) -> ScenarioRun:
        return ScenarioRun(self.signer(live, secret), self.controller.url, state, poll_cap=0.2, max_polls=100)

    @contextlib.contextmanager
    def endpoint(self) -> Iterator[LiveEndpoint]:
        with live_endpoint(self.settings) as live:
            yield live

    def close(self) -> None:
        for signer in self.signers:
            signer.close()
        self.controller.stop()
        self.inbound_proxy.stop()
        self.egress_proxy.stop()


SECRETS_REFRESH = 0.1  # endpoint.secrets_refresh: key changes reach the endpoint this fast


def build_rig(tls: Tls, db_settings: DatabaseSettings, tmp: Path, **aps: Any) -> Rig:
    controller = ControllerServer(tls=(tls.cert_pem, tls.key_pem)).start()
    controller.trust(CONSUMER_KEY, CONSUMER_SECRET)
    controller.put(ACCOUNT_ID, {"aps": {"id": ACCOUNT_ID}, "companyName": "Fetched Company Ltd"})
    inbound = ForwardProxy(record_path=str(tmp / "inbound.jsonl")).start()
    egress = ForwardProxy(record_path=str(tmp / "egress.jsonl")).start()
    options = {**FAST, "controller_allowlist": (controller.url,), "sync_budget": 0.3, **aps}
    settings = make_settings(
        database=db_settings,
        endpoint={"secrets_refresh": SECRETS_REFRESH},
        aps=ApsSettings(**options),
        proxy=ProxySettings(url=egress.url, ca_bundle=tls.ca_pem, connect_timeout=2.0, read_timeout=5.0),
    )
    return Rig(controller, inbound, egress, settings, tmp)
