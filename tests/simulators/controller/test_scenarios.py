"""Done when: the whole APS lifecycle end to end through real proxies in both directions.

controller simulator -> proxy -> endpoint for every lifecycle call; endpoint -> egress proxy -> controller
simulator for the callbacks (account read, usage), each verified there independently. Plus: key rotation
overlap, bad headers/bodies/replays through the proxies, and async polls across an endpoint restart.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import peewee as pw
import pytest
import requests
from requests_oauthlib import OAuth1

from endpoint.aps import jobs
from endpoint.aps.operations import tenant_payload
from endpoint.aps.payloads import TenantInput
from endpoint.provisioning.keys import rotate
from models import ApsJob, ApsResource, Organization, User
from models.aps import PENDING, RUNNING
from models.db import DatabaseSettings, utcnow
from simulators.controller.scenarios import (
    TENANT_TYPE,
    USER_TYPE,
    ScenarioRun,
    add_users,
    create_instance,
    lifecycle,
    provision_tenant,
)
from tests.simulators.controller.stack import ACCOUNT_ID, SECRETS_REFRESH, Rig, build_rig
from tests.support.builders import CONSUMER_KEY, create_consumer, create_org
from tests.support.simulator_processes import Tls
from tests.support.two_partner_tenancy import snapshot


@pytest.fixture
def rig(database: pw.Database, db_settings: DatabaseSettings, tls: Tls, tmp_path: Path) -> Iterator[Rig]:
    create_consumer()
    create_org("Provider Partner")
    built = build_rig(tls, db_settings, tmp_path)
    yield built
    built.close()


def settle(timeout: float = 5.0, quiet: float = 0.3) -> None:
    """Wait until background jobs (usage syncs) are finished and none appears for ``quiet`` seconds, so
    snapshots compare like with like (a sync can be queued just after the request that caused it)."""
    deadline = time.monotonic() + timeout
    calm_since = time.monotonic()
    while time.monotonic() < deadline:
        if ApsJob.select().where(ApsJob.state.in_((PENDING, RUNNING))).exists():
            calm_since = time.monotonic()
        elif time.monotonic() - calm_since >= quiet:
            return
        time.sleep(0.02)


def steps(run: ScenarioRun) -> list[tuple[str, int]]:
    return [(f"{r.method} {r.path.split('/')[0]}", r.status) for r in run.results]


def test_the_full_lifecycle_through_both_proxies(rig: Rig) -> None:
    # The account read is slow: the async tenant answers 202 and is polled until done.
    rig.controller.fault("GET", f"/aps/2/resources/{ACCOUNT_ID}", None, times=1, delay=0.8)
    state = {"account_id": ACCOUNT_ID}
    with rig.endpoint() as live:
        run = rig.run(live, state)
        lifecycle(run)
        assert [r for r in run.results if not r.ok] == []
        assert steps(run) == [
            ("POST app", 201),
            ("POST tenants", 201),
            ("POST tenants", 201),
            ("POST users", 201),
            ("POST users", 201),
            ("GET tenants", 200),
            ("POST tenants", 200),
            ("POST tenants", 200),
            ("DELETE tenants", 204),
            ("DELETE tenants", 204),
            ("DELETE app", 204),
        ]
        sync_tenant, async_tenant = run.results[1], run.results[2]
        assert sync_tenant.polls == 0 and async_tenant.polls >= 1
        assert async_tenant.body["name"] == "Fetched Company Ltd"
        assert run.results[5].body["USERS"] == {"usage": 3, "limit": 10}  # the admin and two users
        assert run.results[6].body["status"] == "disabled"
    assert Organization.select().where(Organization.kind == "customer").count() == 0
    assert (
        ApsResource.select().count() == 0 and User.select().where(User.login.startswith("user")).count() == 0
    )

    received = rig.controller.received()
    assert received and all(r.verified for r in received), [(r.path, r.reason) for r in received]
    account_reads = [r for r in received if r.path == f"/aps/2/resources/{ACCOUNT_ID}"]
    assert account_reads[0].headers["APS-Resource-ID"] == state["async_tenant_id"]
    usage = [r.body for r in received if r.method == "PUT" and r.path.endswith(state["tenant_id"])]
    assert {"aps": {"id": state["tenant_id"]}, "USERS": {"usage": 3}} in usage
    assert all("oauth_body_hash" not in r.headers["Authorization"] for r in received)
    # Both directions really crossed a proxy.
    port = rig.controller.url.rstrip("/").rsplit(":", 1)[1]
    assert {f"{f['method']} {f['target']}" for f in rig.egress_proxy.flows} == {f"CONNECT 127.0.0.1:{port}"}
    inbound = [f for f in rig.inbound_proxy.flows if f["target"].startswith("http://127.0.0.1")]
    assert len(inbound) == sum(1 + r.polls for r in run.results)


def test_test_connection_checks_the_outbound_path(rig: Rig) -> None:
    state: dict[str, object] = {}
    with rig.endpoint() as live:
        run = rig.run(live, state)
        create_instance(run)
        rig.controller.put(str(state["instance_id"]), {"aps": {"id": state["instance_id"]}})
        result = run.call("test", "POST", f"app/{state['instance_id']}/testConnection", {}, expected=(200,))
    report = {step["name"]: step for step in result.body["steps"]}
    assert report["proxy"]["ok"] and report["controller"]["ok"], report
    assert not report["acronis"]["ok"]  # no datacenter configured in this rig


def test_key_rotation_overlap_end_to_end(rig: Rig) -> None:
    state: dict[str, object] = {}
    with rig.endpoint() as live:
        old = rig.run(live, state)
        create_instance(old)
        provision_tenant(old)
        new_secret = rotate(CONSUMER_KEY, dt.timedelta(hours=24), utcnow()).secret
        time.sleep(3 * SECRETS_REFRESH)  # the rotation reaches the serving process's secrets snapshot
        add_users(old, count=1)  # the controller still signs with the old secret: accepted
        rig.controller.trust(CONSUMER_KEY, new_secret)  # it learns the new one...
        new = rig.run(live, state, secret=new_secret)
        add_users(new, count=1)  # ...signs with it, and our callbacks follow
        time.sleep(0.3)
        assert [r.status for r in old.results + new.results] == [201, 201, 201, 201]
        rig.controller.trust(CONSUMER_KEY, "the-old-secret-is-gone-000000")
        assert new.call("read", "GET", f"tenants/{state['tenant_id']}").status == 200
        rotate(CONSUMER_KEY, dt.timedelta(0), utcnow())  # overlap over: both secrets so far have ended
        time.sleep(3 * SECRETS_REFRESH)
        assert new.call("read", "GET", f"tenants/{state['tenant_id']}", expected=(401,)).ok
    puts = [r for r in rig.controller.received() if r.method == "PUT"]
    assert puts and puts[-1].verified  # the last usage push was signed with the new secret


def test_bad_headers_bodies_and_replays_through_the_proxy(rig: Rig) -> None:
    state: dict[str, object] = {}
    with rig.endpoint() as live:
        run = rig.run(live, state)
        create_instance(run)
        provision_tenant(run)
        signer = run.signer
        settle()
        before = snapshot()
        user = {
            "aps": {"type": USER_TYPE, "id": str(uuid.uuid4())},
            "tenant": {"aps": {"id": state["tenant_id"]}},
            "login": "mallory",
            "email": "m@example.com",
        }
        evil = signer.send(
            "POST",
            "users",
            user,
            instance_id=str(state["instance_id"]),
            controller_uri="https://evil.example/",
        )
        assert evil.status_code == 400 and set(evil.json()) == {"code", "error", "message"}
        bad = signer.send(
            "POST",
            "tenants",
            {"aps": {"type": TENANT_TYPE}},
            instance_id=str(state["instance_id"]),
            controller_uri=rig.controller.url,
        )
        assert bad.status_code == 400 and bad.json()["error"] == "BadRequest"
        other = signer.send(
            "GET",
            f"app/{state['instance_id']}",
            instance_id=str(uuid.uuid4()),
            controller_uri=rig.controller.url,
        )
        assert other.status_code == 401
        assert snapshot() == before
        # A replay: the same signed bytes sent twice through the proxy.
        session = requests.Session()
        session.trust_env = False
        session.proxies = {"http": rig.inbound_proxy.url}
        body = json.dumps(user).encode()
        prepared = requests.Request(
            "POST",
            "https://connector.example.com/users",
            data=body,
            headers={
                "Content-Type": "application/json",
                "APS-Instance-ID": str(state["instance_id"]),
                "APS-Controller-URI": rig.controller.url,
            },
            auth=OAuth1(CONSUMER_KEY, client_secret=rig.secret),
        ).prepare()
        prepared.url = live.base_url + "/users"
        prepared.headers["Host"] = "connector.example.com"
        assert session.send(prepared, timeout=10).status_code == 201
        settle()  # the new user queues a usage sync; let it finish before comparing
        after_first = snapshot()
        replay = session.send(prepared, timeout=10)
        assert replay.status_code == 401 and replay.json()["code"] == 401
        assert snapshot() == after_first
        session.close()
    time.sleep(0.2)
    assert not any("evil" in r.path for r in rig.controller.received())


def test_an_async_poll_after_a_restart_reports_the_real_state_and_the_job_resumes(rig: Rig) -> None:
    rig.controller.fault("GET", f"/aps/2/resources/{ACCOUNT_ID}", 503, times=-1)  # the controller is down
    state = {"account_id": ACCOUNT_ID}
    body = {"aps": {"type": TENANT_TYPE, "id": str(uuid.uuid4())}, "account": {"aps": {"id": ACCOUNT_ID}}}
    with rig.endpoint() as live:
        run = rig.run(live, state)
        create_instance(run)
        first = run.signer.send(
            "POST", "tenants", body, instance_id=state["instance_id"], controller_uri=rig.controller.url
        )
        assert first.status_code == 202
        time.sleep(0.3)
    attempts = ApsJob.get(ApsJob.aps_id == body["aps"]["id"]).attempts
    assert attempts >= 2  # the runner kept trying between polls
    with rig.endpoint() as live:  # a new process on the same database
        run = rig.run(live, state)
        polled = run.signer.send(
            "POST",
            "tenants",
            body,
            instance_id=state["instance_id"],
            controller_uri=rig.controller.url,
            phase="async",
        )
        assert polled.status_code == 202, polled.text  # never a false 200
        assert "retrying: The controller answered 503." in polled.headers["APS-Info"]
        rig.controller.clear_faults()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            polled = run.signer.send(
                "POST",
                "tenants",
                body,
                instance_id=state["instance_id"],
                controller_uri=rig.controller.url,
                phase="async",
            )
            if polled.status_code != 202:
                break
            time.sleep(0.05)
        assert polled.status_code == 201 and polled.json()["name"] == "Fetched Company Ltd"
    job = ApsJob.get(ApsJob.aps_id == body["aps"]["id"])
    assert job.attempts > attempts  # resumed, not restarted from nothing


def test_a_job_orphaned_by_a_crash_is_resumed_after_its_lease(rig: Rig) -> None:
    rig.settings = dataclasses.replace(rig.settings, aps=dataclasses.replace(rig.settings.aps, job_lease=0.5))
    state: dict[str, object] = {}
    tenant = TenantInput(str(uuid.uuid4()), TENANT_TYPE, "Crashed Ltd", None, None, None)
    body = {"aps": {"type": TENANT_TYPE, "id": tenant.aps_id}, "name": "Crashed Ltd"}
    with rig.endpoint() as live:
        create_instance(rig.run(live, state))
    # A process took the job and died mid-run (no answer recorded, its lease still running).
    view = jobs.submit(
        str(state["instance_id"]), tenant.aps_id, "tenants.provision", tenant_payload(tenant), "tx"
    )
    assert jobs.claim(view.id, lease=0.6) is not None
    with rig.endpoint() as live:
        run = rig.run(live, state)
        polled = run.signer.send(
            "POST",
            "tenants",
            body,
            instance_id=str(state["instance_id"]),
            controller_uri=rig.controller.url,
            phase="async",
        )
        assert polled.status_code == 202 and polled.headers["APS-Info"] == "In progress (attempt 1)."
        deadline = time.monotonic() + 10
        while polled.status_code == 202 and time.monotonic() < deadline:
            time.sleep(0.05)
            polled = run.signer.send(
                "POST",
                "tenants",
                body,
                instance_id=str(state["instance_id"]),
                controller_uri=rig.controller.url,
                phase="async",
            )
        assert polled.status_code == 201 and polled.json()["name"] == "Crashed Ltd"
    assert ApsJob.get_by_id(view.id).attempts == 2
    assert ApsJob.select().where(ApsJob.state.in_((PENDING, RUNNING))).count() == 0
