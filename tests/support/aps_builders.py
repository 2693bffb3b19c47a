"""Builders for the APS tests: settings, a bound instance, headers, contexts, a stub controller."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from endpoint.aps.context import ApsContext
from endpoint.aps.headers import ApsHeaders
from endpoint.aps.settings import ApsSettings
from endpoint.auth.identity import VerifiedConsumer
from models import ApsInstance, Consumer, Organization
from tests.support.builders import CONSUMER_KEY, create_consumer, create_org
from tests.support.stub_adapter import StubAdapter

INSTANCE_ID = "5d1e4c2a-8f3b-4a6d-9c7e-1b2a3c4d5e6f"
CONTROLLER_URI = "https://apsc.example.net:6308/"
APP_TYPE = "http://vendor.example.com/acronis-connector/app/1.0"
TENANT_TYPE = "http://vendor.example.com/acronis-connector/tenant/1.0"
USER_TYPE = "http://vendor.example.com/acronis-connector/user/1.0"
ACCOUNT = "a0000000-0000-4000-8000-000000000001"  # the APS account resource the controller stubs know

FAST = dict(
    retry_timeout_min=1,
    retry_timeout_max=1,
    job_poll_interval=0.02,
    job_backoff_base=0.05,
    job_backoff_max=0.1,
    controller_backoff=0.01,
)


def aps_settings(**overrides: Any) -> ApsSettings:
    return ApsSettings(**{**FAST, **overrides})


def headers(
    instance_id: str = INSTANCE_ID, controller_uri: str = CONTROLLER_URI, phase: str = "sync"
) -> ApsHeaders:
    return ApsHeaders(instance_id, controller_uri, "tx-0001", phase)


def consumer(key: str = CONSUMER_KEY, secret_id: int = 1) -> VerifiedConsumer:
    return VerifiedConsumer(key=key, secret_id=secret_id)


@dataclass(frozen=True)
class Bound:
    partner: Organization
    consumer: Consumer
    instance: ApsInstance

    def ctx(self, phase: str = "sync", transaction_id: str | None = "tx-0001") -> ApsContext:
        return ApsContext(
            instance_id=self.instance.instance_id,
            controller_uri=self.instance.controller_uri,
            consumer_key=self.consumer.key,
            secret_id=1,
            transaction_id=transaction_id,
            phase=phase,
            organization_id=self.partner.id,
            app_id=self.instance.aps_id,
        )


def bound_instance(
    instance_id: str = INSTANCE_ID, key: str = CONSUMER_KEY, partner: Organization | None = None
) -> Bound:
    """A partner, a consumer and an instance bound to it (what POST /app leaves behind)."""
    partner = partner or create_org("Provider Partner")
    existing = Consumer.get_or_none(Consumer.key == key)
    owner = existing or create_consumer(key=key)
    instance = ApsInstance.create(
        instance_id=instance_id,
        aps_id=instance_id,
        aps_type=APP_TYPE,
        controller_uri=CONTROLLER_URI,
        consumer_key=key,
        organization=partner,
    )
    return Bound(partner, owner, instance)


def tenant_body(aps_id: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"aps": {"type": TENANT_TYPE, "id": aps_id or str(uuid.uuid4())}, **fields}


def user_body(tenant_id: str, aps_id: str | None = None, **fields: Any) -> dict[str, Any]:
    defaults = {"login": f"user-{uuid.uuid4().hex[:8]}", "email": "user@example.com"}
    return {
        "aps": {"type": USER_TYPE, "id": aps_id or str(uuid.uuid4())},
        "tenant": {"aps": {"id": tenant_id}},
        **defaults,
        **fields,
    }


def sent_headers(call: dict[str, Any]) -> dict[str, str]:
    """A recorded call's headers as text (requests-oauthlib hands the signed headers over as bytes)."""
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in call["headers"].items()}


@dataclass
class StubController:
    """A session whose adapter plays the controller: resources by id, every call recorded."""

    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: int | None = None  # force this status on every call
    respond: Callable[[requests.PreparedRequest], tuple[int, dict[str, str], bytes]] | None = None

    def __post_init__(self) -> None:
        self.adapter = StubAdapter(self._answer)
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.mount("https://", self.adapter)
        self.session.mount("http://", self.adapter)

    @property
    def calls(self) -> list[dict[str, Any]]:
        return self.adapter.calls

    def _answer(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        if self.respond is not None:
            return self.respond(request)
        if self.status is not None:
            return self.status, {"Content-Type": "application/json"}, b'{"message": "forced"}'
        resource_id = (request.url or "").rsplit("/", 1)[-1]
        if request.method == "PUT":
            self.resources[resource_id] = json.loads(request.body or b"{}")
            return 200, {"Content-Type": "application/json"}, request.body or b"{}"  # type: ignore[return-value]
        if resource_id in self.resources:
            return 200, {"Content-Type": "application/json"}, json.dumps(self.resources[resource_id]).encode()
        return 404, {"Content-Type": "application/json"}, b'{"code": 404, "message": "Resource not found."}'
