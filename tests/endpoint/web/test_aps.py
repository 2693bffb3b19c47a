"""APS routes over real HTTP: header rules, key binding, bodies, replays — 4xx APS bodies, nothing changed."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import peewee as pw
import pytest
import requests

from endpoint.aps.settings import ApsSettings
from models import ApsInstance, ApsJob, Organization, User
from models.db import DatabaseSettings
from proxy.session import ProxySettings
from simulators.controller.server import ControllerServer
from tests.support.aps_builders import APP_TYPE, FAST, TENANT_TYPE, USER_TYPE
from tests.support.builders import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    create_consumer,
    create_org,
    fast_hasher,
    make_settings,
    sign,
)
from tests.support.live_endpoint import LiveEndpoint, live_endpoint
from tests.support.simulator_processes import Tls, make_tls
from tests.support.two_partner_tenancy import snapshot

INSTANCE = "5d1e4c2a-8f3b-4a6d-9c7e-1b2a3c4d5e6f"
OTHER_KEY = "acme-00000000000000000000000000000000"
OTHER_SECRET = "other-secret-" + "c" * 32


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("aps-tls"))


@pytest.fixture
def controllers(tls: Tls) -> Iterator[tuple[ControllerServer, ControllerServer]]:
    """The instance's controller, and another one nobody should ever call."""
    real = ControllerServer(tls=(tls.cert_pem, tls.key_pem)).start()
    other = ControllerServer(tls=(tls.cert_pem, tls.key_pem)).start()
    for server in (real, other):
        server.trust(CONSUMER_KEY, CONSUMER_SECRET)
    yield real, other
    real.stop()
    other.stop()


@pytest.fixture
def live(
    database: pw.Database, db_settings: DatabaseSettings, tls: Tls, controllers: Any
) -> Iterator[LiveEndpoint]:
    create_consumer()
    create_consumer(key=OTHER_KEY, secret=OTHER_SECRET)
    create_org("Provider Partner")
    settings = make_settings(
        database=db_settings, aps=ApsSettings(**FAST), proxy=ProxySettings(ca_bundle=tls.ca_pem)
    )
    with live_endpoint(settings) as endpoint:
        yield endpoint


class Aps:
    def __init__(self, live: LiveEndpoint, controller: ControllerServer) -> None:
        self.live = live
        self.controller_uri = controller.url

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str = CONSUMER_KEY,
        secret: str = CONSUMER_SECRET,
        **headers: str | None,
    ) -> requests.Response:
        sent = {
            "APS-Instance-ID": INSTANCE,
            "APS-Controller-URI": self.controller_uri,
            "APS-Transaction-ID": "tx-77",
        }
        sent.update({k.replace("_", "-"): v for k, v in headers.items() if v is not None})
        for name in [k.replace("_", "-") for k, v in headers.items() if v is None]:
            sent.pop(name, None)
        data = body if isinstance(body, bytes) else (None if body is None else json.dumps(body).encode())
        return self.live.signed(method, path, body=data, headers=sent, key=key, secret=secret)


@pytest.fixture
def aps(live: LiveEndpoint, controllers: tuple[ControllerServer, ControllerServer]) -> Aps:
    return Aps(live, controllers[0])


def aps_error(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "error", "message"} and body["code"] == status
    assert "Traceback" not in response.text
    return body


def create_instance(aps: Aps) -> None:
    assert aps("POST", "/app", {"aps": {"type": APP_TYPE, "id": INSTANCE}}).status_code == 201


def provision(aps: Aps, name: str = "Acme") -> str:
    tenant_id = str(uuid.uuid4())
    response = aps("POST", "/tenants", {"aps": {"type": TENANT_TYPE, "id": tenant_id}, "name": name})
    assert response.status_code == 201, response.text
    return tenant_id


def test_the_lifecycle_routes(aps: Aps, controllers: tuple[ControllerServer, ControllerServer]) -> None:
    created = aps("POST", "/app", {"aps": {"type": APP_TYPE, "id": INSTANCE}, "hubID": "h"})
    assert created.status_code == 201 and created.json()["hubID"] == "h"
    assert aps("POST", "/app", {"aps": {"type": APP_TYPE, "id": INSTANCE}, "hubID": "h"}).status_code == 200
    assert aps("PUT", f"/app/{INSTANCE}", {"hubID": "h2"}).json()["hubID"] == "h2"
    tenant_id = provision(aps)
    user_id = str(uuid.uuid4())
    user = {
        "aps": {"type": USER_TYPE, "id": user_id},
        "tenant": {"aps": {"id": tenant_id}},
        "login": "ann",
        "email": "a@b.c",
    }
    assert aps("POST", "/users", user).status_code == 201
    assert aps("PUT", f"/users/{user_id}", {"name": "Ann"}).json()["name"] == "Ann"
    assert aps("GET", f"/users/{user_id}").json()["login"] == "ann"
    assert aps("GET", f"/tenants/{tenant_id}").json()["USERS"] == {"usage": 1}
    assert aps("PUT", f"/tenants/{tenant_id}", {"USERS": {"limit": 9}}).json()["USERS"] == {
        "usage": 1,
        "limit": 9,
    }
    assert aps("POST", f"/tenants/{tenant_id}/disable").json()["status"] == "disabled"
    assert aps("POST", f"/tenants/{tenant_id}/enable").json()["status"] == "active"
    event = {"event": "http://aps-standard.org/types/core/resource/1.0#Changed", "source": {"id": tenant_id}}
    assert aps("POST", f"/tenants/{tenant_id}/onUsersChange", event).status_code == 204
    assert aps("POST", f"/app/{INSTANCE}/onSomethingNew", event).status_code == 204
    assert aps("DELETE", f"/users/{user_id}").status_code == 204
    assert aps("DELETE", f"/tenants/{tenant_id}").status_code == 204
    assert aps("DELETE", f"/app/{INSTANCE}").status_code == 204
    assert aps("DELETE", f"/app/{INSTANCE}").status_code == 204
    time_limit = time.monotonic() + 5
    while time.monotonic() < time_limit and not any(r.method == "PUT" for r in controllers[0].received()):
        time.sleep(0.02)
    puts = [r for r in controllers[0].received() if r.method == "PUT"]
    assert puts and all(r.verified and r.headers["APS-Transaction-ID"] == "tx-77" for r in puts)


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"APS_Instance_ID": None}, "APS-Instance-ID header is required"),
        ({"APS_Instance_ID": "12345"}, "APS-Instance-ID must be a UUID"),
        ({"APS_Controller_URI": None}, "APS-Controller-URI header is required"),
        ({"APS_Controller_URI": "http://127.0.0.1:1/"}, "must be https://"),
        ({"APS_Controller_URI": "OTHER"}, "differs from the controller this instance was created by"),
        ({"APS_Request_Phase": "soon"}, "APS-Request-Phase must be sync or async"),
    ],
)
def test_bad_headers_are_400_and_nobody_is_called(
    aps: Aps,
    controllers: tuple[ControllerServer, ControllerServer],
    headers: dict[str, str | None],
    fragment: str,
) -> None:
    create_instance(aps)
    tenant_id = provision(aps)
    if headers.get("APS_Controller_URI") == "OTHER":
        headers = {"APS_Controller_URI": controllers[1].url}
    before = snapshot()
    user = {
        "aps": {"type": USER_TYPE, "id": str(uuid.uuid4())},
        "tenant": {"aps": {"id": tenant_id}},
        "login": "x",
        "email": "x@y.z",
    }
    body = aps_error(aps("POST", "/users", user, **headers), 400)
    assert fragment in body["message"]
    assert snapshot() == before
    time.sleep(0.1)  # a usage sync would have been scheduled at once
    assert controllers[1].received() == [] and controllers[0].received() == []


def test_a_key_signing_for_another_instance_is_401(aps: Aps) -> None:
    create_instance(aps)
    before = snapshot()
    aps_error(aps("GET", f"/app/{INSTANCE}", key=OTHER_KEY, secret=OTHER_SECRET), 401)
    other = str(uuid.uuid4())
    aps_error(aps("POST", "/app", {"aps": {"type": APP_TYPE, "id": other}}, APS_Instance_ID=other), 401)
    assert snapshot() == before
    assert ApsInstance.get_by_id(INSTANCE).consumer_key == CONSUMER_KEY


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'{"aps": {"id": "x", "type": "t"}}',
        b'{"aps": {"type": "t"}}',
        json.dumps(
            {"aps": {"type": TENANT_TYPE, "id": str(uuid.uuid4())}, "USERS": {"limit": "many"}}
        ).encode(),
    ],
)
def test_bad_bodies_are_400_and_change_nothing(aps: Aps, body: bytes) -> None:
    create_instance(aps)
    before = snapshot()
    aps_error(aps("POST", "/tenants", body), 400)
    assert snapshot() == before


def test_a_replayed_request_is_401_and_changes_nothing(aps: Aps, live: LiveEndpoint) -> None:
    create_instance(aps)
    body = json.dumps({"aps": {"type": TENANT_TYPE, "id": str(uuid.uuid4())}, "name": "Replayed"}).encode()
    headers = sign(
        "POST",
        live.public_base + "/tenants",
        {"APS-Instance-ID": INSTANCE, "APS-Controller-URI": aps.controller_uri},
    )
    assert (
        requests.post(live.base_url + "/tenants", data=body, headers=headers, timeout=10).status_code == 201
    )
    before = snapshot()
    aps_error(requests.post(live.base_url + "/tenants", data=body, headers=headers, timeout=10), 401)
    assert snapshot() == before
    assert Organization.select().where(Organization.name == "Replayed").count() == 1


def test_unsigned_wrong_type_and_unknown_ids(aps: Aps, live: LiveEndpoint) -> None:
    create_instance(aps)
    aps_error(requests.get(f"{live.base_url}/app/{INSTANCE}", timeout=10), 401)  # no Authorization at all
    aps_error(aps("GET", f"/app/{INSTANCE}", secret="wrong-secret-0000"), 401)
    aps_error(aps("POST", "/tenants", b"{}", Content_Type="text/plain"), 400)
    aps_error(aps("GET", "/tenants/not-a-uuid"), 404)
    aps_error(aps("GET", f"/tenants/{uuid.uuid4()}"), 404)
    aps_error(aps("PATCH", f"/tenants/{uuid.uuid4()}", {}), 405)
    aps_error(aps("POST", f"/tenants/{uuid.uuid4()}/adminlogin", {}), 404)
    aps_error(aps("POST", f"/tenants/{uuid.uuid4()}/adminlogin", {}, secret="wrong-secret-0000"), 401)


def test_disabled_tenants_users_fail_authentication(aps: Aps, live: LiveEndpoint) -> None:
    create_instance(aps)
    tenant_id = str(uuid.uuid4())
    body = {"aps": {"type": TENANT_TYPE, "id": tenant_id}, "name": "T", "admin": {"login": "tenant.admin"}}
    assert aps("POST", "/tenants", body).status_code == 201
    User.update(password_hash=fast_hasher().hash("pw-123456")).where(User.login == "tenant.admin").execute()
    signed_in = live.callback("vendor.app.users_read.v1.0", login="tenant.admin", password="pw-123456")
    assert signed_in.status_code == 403  # authenticated; a customer's user may not act as a partner
    assert aps("POST", f"/tenants/{tenant_id}/disable").status_code == 200
    locked = live.callback("vendor.app.users_read.v1.0", login="tenant.admin", password="pw-123456")
    assert locked.status_code == 401
    assert aps("POST", f"/tenants/{tenant_id}/enable").status_code == 200
    assert (
        live.callback("vendor.app.users_read.v1.0", login="tenant.admin", password="pw-123456").status_code
        == 403
    )


def test_every_log_line_of_a_request_carries_the_transaction(
    aps: Aps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    create_instance(aps)
    provision(aps)
    aps_error(aps("GET", "/tenants/not-a-uuid", APS_Transaction_ID="tx-rejected"), 404)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and len([r for r in caplog.records if r.name == "endpoint.access"]) < 3:
        time.sleep(0.01)
    access = [r.fields for r in caplog.records if r.name == "endpoint.access"]  # type: ignore[attr-defined]
    assert [f["transaction"] for f in access] == ["tx-77", "tx-77", "tx-rejected"]
    assert access[1]["instance"] == INSTANCE and access[2]["reason"]
    service_lines = [r for r in caplog.records if r.name.startswith("endpoint.aps")]
    assert service_lines and all(r.fields["transaction"] == "tx-77" for r in service_lines)  # type: ignore[attr-defined]


def upgraded() -> tuple[str | None, object]:
    row = ApsInstance.get(ApsInstance.instance_id == INSTANCE)
    return row.upgraded_from, row.upgraded_at


def test_the_upgrade_call_records_the_version_once(aps: Aps) -> None:
    create_instance(aps)
    assert upgraded() == (None, None)
    first = aps("POST", f"/app/{INSTANCE}/upgrade?version=1.0-1")
    assert first.status_code == 204 and first.content == b""
    version, when = upgraded()
    assert version == "1.0-1" and when is not None
    assert aps("POST", f"/app/{INSTANCE}/upgrade?version=1.0-1").status_code == 204  # idempotent
    assert upgraded() == ("1.0-1", when)
    assert aps("POST", f"/app/{INSTANCE}/upgrade?version=1.1-3").status_code == 204
    assert upgraded()[0] == "1.1-3"


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?version=",
        "?version=1.0&version=1.1",
        "?version=" + "9" * 65,
        "?version=1.0%20beta",
        "?version=1.0%0A",
        "?version=1.0%00",
        "?version=1.%C3%A9",
    ],
)
def test_an_upgrade_without_a_usable_version_is_400_and_changes_nothing(aps: Aps, query: str) -> None:
    create_instance(aps)
    body = aps_error(aps("POST", f"/app/{INSTANCE}/upgrade{query}"), 400)
    assert "version" in body["message"]
    assert upgraded() == (None, None)


def test_an_upgrade_is_signed_and_bound_like_every_aps_route(aps: Aps, live: LiveEndpoint) -> None:
    create_instance(aps)
    unsigned = requests.post(f"{live.base_url}/app/{INSTANCE}/upgrade?version=1.0", timeout=5)
    aps_error(unsigned, 401)
    aps_error(aps("POST", f"/app/{INSTANCE}/upgrade?version=1.0", key=OTHER_KEY, secret=OTHER_SECRET), 401)
    other = str(uuid.uuid4())
    aps_error(aps("POST", f"/app/{other}/upgrade?version=1.0"), 404)  # not this key's instance
    assert aps("DELETE", f"/app/{INSTANCE}").status_code == 204
    aps_error(aps("POST", f"/app/{INSTANCE}/upgrade?version=1.0"), 404)  # removed
    assert upgraded() == (None, None)


def test_another_instance_cannot_block_this_instances_tenant(aps: Aps) -> None:
    """Was: B's refused PUT/disable/DELETE left FAILED jobs keyed (aps.id, operation), and A's own disable
    then got 409 "in use by another instance" for days."""
    create_instance(aps)
    tenant_id = provision(aps)
    other_instance = str(uuid.uuid4())
    as_b = {"key": OTHER_KEY, "secret": OTHER_SECRET, "APS_Instance_ID": other_instance}
    created = aps("POST", "/app", {"aps": {"type": APP_TYPE, "id": other_instance}}, **as_b)
    assert created.status_code == 201, created.text
    jobs_before = ApsJob.select().count()
    aps_error(aps("PUT", f"/tenants/{tenant_id}", {"name": "Mine now"}, **as_b), 404)
    aps_error(aps("POST", f"/tenants/{tenant_id}/disable", **as_b), 404)
    aps_error(aps("DELETE", f"/tenants/{tenant_id}", **as_b), 404)
    aps_error(
        aps("POST", "/tenants", {"aps": {"type": TENANT_TYPE, "id": tenant_id}, "name": "X"}, **as_b), 409
    )
    assert ApsJob.select().count() == jobs_before  # refused before any job existed
    assert aps("POST", f"/tenants/{tenant_id}/disable").json()["status"] == "disabled"  # A's own: fine


@pytest.mark.parametrize("phase", ["sync", "async"])
def test_an_unknown_tenant_is_404_in_both_phases_and_creates_no_job(aps: Aps, phase: str) -> None:
    """Was: the sync call answered 404 but left a failed job, and the async poll then said 500."""
    create_instance(aps)
    unknown = str(uuid.uuid4())
    for _ in range(2):  # the poll repeats the request
        body = aps_error(aps("POST", f"/tenants/{unknown}/disable", APS_Request_Phase=phase), 404)
        assert body["message"] == "Tenant not found."
    assert ApsJob.select().count() == 0
    assert aps("DELETE", f"/tenants/{unknown}", APS_Request_Phase=phase).status_code == 204  # already gone
    assert ApsJob.select().count() == 0
