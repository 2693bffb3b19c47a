"""A tiny CyberApp callback handler for the gateway simulator's tests: an independent JWT check (PyJWT
against the key ring's JWKS) and the end states of mirroring and mapping, enough to tell right from wrong."""

from __future__ import annotations

import base64
import binascii
import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

from simulators.controller.callbacks import cyberapp_auth
from simulators.keyring import KeyRing

ENDPOINT_IDS = (
    "cti.a.p.acgw.endpoint.v1.0~vendor.app.endpoint.v1.0",
    "cti.a.p.acgw.endpoint.v1.1~vendor.app.endpoint.v1.1",
)
LOGIN, PASSWORD = "reseller-admin", "pa:ss w0rd"
ORG, CUSTOMERS = "org-partner", ("org-customer-b", "org-customer-a")


@dataclass
class FakeCyberApp:
    ring: KeyRing
    received: list[dict[str, Any]] = field(default_factory=list)
    mirrored: dict[str, Any] = field(default_factory=dict)  # P -> {"enabled", "vendor", "customers": {C: on}}
    mapped_partner: str | None = None
    customer_map: dict[str, str] = field(default_factory=dict)

    def handle(self, headers: Mapping[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        self.received.append({"headers": dict(headers), "body": json.loads(raw)})
        body = self.received[-1]["body"]
        context, callback = body["context"], body["context"]["callback_id"].split("~", 1)[1]
        roles = self._roles(headers.get("Authorization", ""))
        if roles is None or context["endpoint_id"] not in roles or context["endpoint_id"] not in ENDPOINT_IDS:
            return 401, self._error(body, "Authentication failed.")
        try:
            json.loads(base64.b64decode(headers["X-CyberApp-Extra"], validate=True))
        except (KeyError, ValueError, binascii.Error):
            return 400, self._error(body, "Bad X-CyberApp-Extra.")
        if ".mirroring." in callback:
            return self._mirroring(body, callback, context["tenant_id"])
        if headers.get("X-CyberApp-Auth") != cyberapp_auth(LOGIN, PASSWORD):
            return 401, self._error(body, "Authentication failed.")
        return self._mapping(body, callback)

    def _roles(self, authorization: str) -> set[str] | None:
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer":
            return None
        try:
            key = jwt.PyJWKSet.from_dict(self.ring.jwks())[jwt.get_unverified_header(token)["kid"]].key
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer="https://acronis.cloud",
                options={"verify_aud": False},
            )
        except (jwt.PyJWTError, KeyError):
            return None
        return {scope["role"] for scope in claims["scope"]}

    def _mirroring(self, body: dict[str, Any], callback: str, tenant: str) -> tuple[int, dict[str, Any]]:
        partner = self.mirrored.get(tenant)
        name = callback.rsplit(".v1.0", 1)[0]
        if name == "a.p.partner.mirroring.get_state":
            return self._ok(
                body, name, {"state": "ENABLED" if partner and partner["enabled"] else "DISABLED"}
            )
        if name == "a.p.partner.mirroring.enable":
            partner = self.mirrored.setdefault(
                tenant, {"vendor": str(len(self.mirrored) + 1), "customers": {}}
            )
            partner["enabled"] = True
            answer = {"state": "ENABLED", "vendor_tenant_id": partner["vendor"], "acronis_tenant_id": tenant}
            return self._ok(body, name, answer)
        if name == "a.p.partner.mirroring.reset":
            if partner:
                partner["enabled"] = False
                partner["customers"] = dict.fromkeys(partner["customers"], False)
            return self._ok(body, name, None)
        if not partner or not partner["enabled"]:
            return 409, self._error(body, "The partner is not enabled.")
        if name == "a.p.customer.mirroring.get_state":
            on = [c for c, enabled in partner["customers"].items() if enabled]
            items = [{"vendor_tenant_id": f"c-{c}", "acronis_tenant_id": c, "settings": {}} for c in on]
            return self._ok(body, name, items)
        for item in body["payload"].get("enabled", []):
            partner["customers"][item["acronis_tenant_id"]] = True
        for item in body["payload"].get("disabled", []):
            partner["customers"][item["acronis_tenant_id"]] = False
        return self._ok(body, name, None)

    def _mapping(self, body: dict[str, Any], callback: str) -> tuple[int, dict[str, Any]]:
        name = callback.rsplit(".v1.0", 1)[0]
        if name == "a.p.enablement.read":
            extra = {"acronis_tenant_id": self.mapped_partner} if self.mapped_partner else {}
            return self._ok(body, name + ".ok", {"vendor_tenant_id": ORG, **extra})
        if name == "a.p.enablement.write":
            self.mapped_partner = body["payload"]["acronis_tenant_id"]
            return self._ok(body, "a.p.success_no_content", None)
        if name == "a.p.enablement.reset":
            self.mapped_partner, self.customer_map = None, {}
            return self._ok(body, "a.p.success_no_content", None)
        if self.mapped_partner is None:
            return 409, self._error(body, "The partner is not enabled.")
        if name == "a.p.topology.read":
            return self._ok(body, name + ".ok", {"items": [{"id": c, "name": c} for c in sorted(CUSTOMERS)]})
        if name == "a.p.tenant_mapping.read":
            items = [
                {
                    "vendor_tenant_id": c,
                    **({"acronis_tenant_id": self.customer_map[c]} if c in self.customer_map else {}),
                }
                for c in sorted(CUSTOMERS)
            ]
            return self._ok(body, name + ".ok", {"items": items})
        for item in body["payload"]["modified"]:
            if item.get("acronis_tenant_id"):
                self.customer_map[item["vendor_tenant_id"]] = item["acronis_tenant_id"]
            else:
                self.customer_map.pop(item["vendor_tenant_id"], None)
        return self._ok(body, "a.p.success_no_content", None)

    def _ok(self, body: dict[str, Any], name: str, payload: Any) -> tuple[int, dict[str, Any]]:
        mirroring = ".mirroring." in name
        prefix = "cti.a.p.acgw.response.v1.1~" if mirroring else "cti.a.p.acgw.response.v1.0~"
        answer = {
            "type": prefix + (f"{name}.ok.v1.0" if mirroring else f"{name}.v1.0"),
            "request_id": body["request_id"],
            "response_id": str(uuid.uuid4()),
        }
        if payload is not None:
            answer["payload"] = payload
        return 200, answer

    def _error(self, body: dict[str, Any], message: str) -> dict[str, Any]:
        return {
            "request_id": body.get("request_id"),
            "response_id": str(uuid.uuid4()),
            "err_message": message,
        }


@contextmanager
def serving(app: FakeCyberApp) -> Iterator[str]:
    """Serve ``app`` on a free loopback port; yields the callback URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, answer = app.handle(dict(self.headers.items()), raw)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/callback"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
