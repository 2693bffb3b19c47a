"""The stack's banner: what it prints for each gateway mode."""

from __future__ import annotations

import io
from pathlib import Path

from simulators.devstack.layout import StackFiles, StackOptions
from simulators.devstack.summary import print_summary


def test_the_summary_of_each_gateway_mode() -> None:
    files = StackFiles(Path("/data"))

    def summary(gateway: str) -> str:
        out = io.StringIO()
        print_summary(StackOptions(gateway=gateway), files, out)
        return out.getvalue()

    oauth, jwt, both = summary("oauth1"), summary("jwt"), summary("both")
    assert "simulators.controller" in oauth and "simulators.gateway" not in oauth
    assert "simulators.gateway" in jwt and "scenario lifecycle" in jwt  # APS routes stay OAuth 1.0
    assert "as the controller sends it" not in jwt  # /callback refuses OAuth 1.0 in this mode
    assert "Bearer JWT only" in jwt and "acronis.cloud" in jwt
    assert "simulators.controller --instance /data/app_instance.json --ca-bundle" in both
    assert "simulators.gateway" in both
