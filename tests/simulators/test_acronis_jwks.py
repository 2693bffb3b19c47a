"""The JWKS route and its controls: rotation, the "unknown kid" and "JWKS down" faults."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import tornado.testing
import tornado.web
from tornado.testing import ExpectLog

from simulators.acronis_api import make_app
from simulators.acronis_jwks import JWKS_PATH
from simulators.acronis_state import SimulatorState
from simulators.keyring import KeyRing, load_keys


class JwksTest(tornado.testing.AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        self.state = SimulatorState({})
        return make_app(self.state)

    def call(self, path: str, body: Any = None, method: str = "POST") -> Any:
        raw = None if body is None else json.dumps(body)
        if method == "POST" and raw is None:
            raw = ""
        response = self.fetch(path, method=method, body=raw, allow_nonstandard_methods=True)
        is_json = response.headers.get("Content-Type", "").startswith("application/json")
        return response.code, json.loads(response.body) if is_json else None

    def kids(self) -> list[str]:
        code, jwks = self.call(JWKS_PATH, method="GET")
        assert code == 200
        return [key["kid"] for key in jwks["keys"]]

    def test_the_jwks_lists_the_signing_key_and_is_recorded(self) -> None:
        signing = self.state.keyring.signing_key().kid
        assert self.kids() == [signing]
        (request,) = self.state.snapshot()["requests"]
        assert request["endpoint"] == "jwks" and request["kids"] == [signing] and request["status"] == 200

    def test_rotation_publishes_the_new_key_next_to_the_old_one(self) -> None:
        old = self.state.keyring.signing_key().kid
        code, answer = self.call("/_sim/jwks/rotate", {"keep": 1})
        assert code == 200 and answer["signing_kid"] == answer["new_kid"] != old
        assert self.kids() == [answer["new_kid"], old]
        code, answer = self.call("/_sim/jwks/rotate", {"keep": 0})
        assert self.kids() == [answer["new_kid"]]
        with ExpectLog("tornado.access", "400 POST /_sim/jwks/rotate", level=logging.WARNING):
            assert self.call("/_sim/jwks/rotate", {"keep": -2})[0] == 400
        with ExpectLog("tornado.access", "400 POST /_sim/jwks/rotate", level=logging.WARNING):
            assert self.call("/_sim/jwks/rotate", ["keep"])[0] == 400

    def test_unknown_kid_fault_withholds_the_signing_key_until_published(self) -> None:
        old = self.state.keyring.signing_key().kid
        code, answer = self.call("/_sim/jwks/withhold")
        assert (
            code == 200
            and answer["signing_kid"] == answer["new_kid"]
            and answer["withheld"] == [answer["new_kid"]]
            and answer["new_kid"] not in self.kids()
        )
        code, answer = self.call("/_sim/jwks/publish")
        assert answer["published_now"] == [answer["signing_kid"]]
        assert self.kids() == [answer["signing_kid"], old]

    def test_jwks_down_is_an_ordinary_fault_on_the_jwks_endpoint(self) -> None:
        alerts_fault = {"endpoint": "alerts", "status": 500, "count": -1}
        down = {"endpoint": "jwks", "status": 503, "count": -1}
        assert self.call("/_sim/faults", {"faults": [alerts_fault, down]})[0] == 200
        assert self.call(JWKS_PATH, method="GET")[0] == 503
        assert self.call(JWKS_PATH, method="GET")[0] == 503
        assert self.call("/_sim/faults?endpoint=jwks", method="DELETE")[0] == 204
        assert self.kids() and [f.endpoint for f in self.state.faults] == ["alerts"]

    def test_status_never_shows_private_material_and_unknown_actions_are_refused(self) -> None:
        code, status = self.call("/_sim/jwks", method="GET")
        assert code == 200 and set(status) == {"signing_kid", "published", "withheld", "directory"}
        with ExpectLog("tornado.access", "405 GET /_sim/jwks/rotate", level=logging.WARNING):
            assert self.call("/_sim/jwks/rotate", method="GET")[0] == 405
        with ExpectLog("tornado.access", "404 POST /_sim/jwks/explode", level=logging.WARNING):
            assert self.call("/_sim/jwks/explode")[0] == 404


def test_the_simulator_serves_the_ring_kept_on_disk(tmp_path: Path) -> None:
    ring = KeyRing.open(tmp_path)
    state = SimulatorState({}, keyring=ring)
    state.keyring.rotate()
    assert [k.kid for k in load_keys(tmp_path)] == [k["kid"] for k in state.keyring.jwks()["keys"]]
