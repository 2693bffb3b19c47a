"""The operations listener: /metrics that prometheus_client parses with counters that move, /healthz,
neither on the serving port, and /healthz on the serving port refused through the inbound proxy."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import peewee as pw
import pytest
import requests
import tornado.netutil
from prometheus_client.parser import text_string_to_metric_families

from endpoint.config.settings import Settings
from endpoint.observability.metrics import MetricsSettings
from endpoint.web.server import serve
from models.db import DatabaseSettings
from tests.support.builders import PUBLIC_URL, make_settings
from tests.support.live_endpoint import LiveEndpoint
from tests.support.simulator_processes import free_port, wait_until
from tests.support.two_partner_tenancy import ADMIN_PASSWORD, build_tenancy

ROOT = Path(__file__).resolve().parents[3]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by (name, sorted labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def with_ops(settings: Settings, body: Callable[[str, str], Awaitable[None]]) -> None:
    """serve() with the operations listener on a free port; ``body(serving_url, ops_url)``."""

    async def main() -> None:
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        stop, ready = asyncio.Event(), asyncio.Event()
        urls: list[str] = []

        def on_ready(found: list[str]) -> None:
            urls.extend(found)
            ready.set()

        task = asyncio.ensure_future(serve(settings, sockets, ready=on_ready, stop=stop))
        await asyncio.wait_for(ready.wait(), 10)
        try:
            await body(urls[0].rstrip("/"), urls[1].rstrip("/"))
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    asyncio.run(main())


async def get(url: str, **kwargs: object) -> requests.Response:
    return await asyncio.to_thread(requests.get, url, timeout=5, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def settings(database: pw.Database, db_settings: DatabaseSettings) -> Settings:
    build_tenancy()
    return make_settings(database=db_settings, metrics=MetricsSettings(port=0))


def test_metrics_count_what_the_endpoint_answers(settings: Settings) -> None:
    async def body(serving: str, ops: str) -> None:
        live = LiveEndpoint(serving, settings)
        for _ in range(3):
            ok = await asyncio.to_thread(live.callback, "a.p.enablement.read.v1.0", password=ADMIN_PASSWORD)
            assert ok.status_code == 200
        refused = await asyncio.to_thread(requests.post, serving + "/callback", json={}, timeout=5)
        assert refused.status_code == 401
        scrape = await get(ops + "/metrics")
        assert scrape.status_code == 200 and scrape.headers["Content-Type"].startswith("text/plain")
        found = samples(scrape.text)
        assert found[("connector_http_requests_total", (("route", "callback"), ("status", "200")))] == 3
        rejected = [
            value
            for (name, labels), value in found.items()
            if name == "connector_http_rejections_total" and ("status", "401") in labels
        ]
        assert rejected == [1.0]
        assert found[("connector_http_request_duration_seconds_count", (("route", "callback"),))] == 4
        hits = found[("connector_credential_cache_lookups_total", (("result", "hit"),))]
        misses = found[("connector_credential_cache_lookups_total", (("result", "miss"),))]
        assert (hits, misses) == (2, 1)  # the first login is verified by argon2, then remembered
        assert ("connector_aps_jobs", (("state", "pending"),)) in found  # sampled from the database
        assert (await get(serving + "/metrics")).status_code == 404  # never on the serving port
        assert (await get(ops + "/healthz")).json()["database"] == "ok"

    with_ops(settings, body)


def test_healthz_on_the_serving_port_is_refused_through_the_inbound_proxy(settings: Settings) -> None:
    async def body(serving: str, ops: str) -> None:
        assert (await get(serving + "/healthz")).status_code == 200  # a direct caller
        proxied = await get(serving + "/healthz", headers={"X-Forwarded-For": "203.0.113.7"})
        assert proxied.status_code == 404
        forwarded = await get(serving + "/healthz", headers={"Forwarded": "for=203.0.113.7"})
        assert forwarded.status_code == 404
        assert (await get(ops + "/healthz", headers={"X-Forwarded-For": "10.0.0.1"})).status_code == 200

    with_ops(settings, body)


def test_healthz_through_the_proxy_when_allowed(database: pw.Database, db_settings: DatabaseSettings) -> None:
    settings = make_settings(
        database=db_settings, endpoint={"health_via_proxy": True}, metrics=MetricsSettings(port=0)
    )

    async def body(serving: str, ops: str) -> None:
        proxied = await get(serving + "/healthz", headers={"X-Forwarded-For": "203.0.113.7"})
        assert proxied.status_code == 200

    with_ops(settings, body)


def test_two_workers_are_summed_into_one_exposition(
    database: pw.Database, db_settings: DatabaseSettings, tmp_path: Path
) -> None:
    """`serve --workers 2`: every request is counted once, whichever worker answered it."""
    database.close()
    port, metrics_port = free_port(), free_port()
    command = [sys.executable, "-m", "endpoint", "serve", "--db", db_settings.url, "--public-url", PUBLIC_URL]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    command += ["--set", f"metrics.port={metrics_port}"]
    scratch = tmp_path / "tmp"  # the server's temporary directory: only its own metrics directory lands here
    scratch.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "TMPDIR": str(scratch),
    }
    with (tmp_path / "serve.log").open("ab") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        assert wait_until(lambda: _answers(metrics_url), timeout=20), (tmp_path / "serve.log").read_text()
        with requests.Session() as first, requests.Session() as second:
            for n in range(40):  # two kept-alive connections: the kernel spreads them over the workers
                session = first if n % 2 else second
                assert session.get(f"http://127.0.0.1:{port}/nowhere", timeout=5).status_code == 404
        found = samples(requests.get(metrics_url, timeout=5).text)
        assert found[("connector_http_requests_total", (("route", "unrouted"), ("status", "404")))] == 40
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    # The parent created the workers' metrics directory and removes it on the way out.
    assert not list(scratch.iterdir())


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False
