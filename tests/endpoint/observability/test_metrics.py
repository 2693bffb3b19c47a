"""ServeMetrics / PushMetrics: what is counted, how rejection reasons stay bounded, the settings rules."""

from __future__ import annotations

from types import SimpleNamespace

import peewee as pw
import pytest
from prometheus_client.parser import text_string_to_metric_families

from endpoint.observability.metrics import MAX_REASONS, MetricsSettings, PushMetrics, ServeMetrics
from models import ApsJob
from models.outbox import OutboxItem
from proxy.errors import ProxyFailure, TransportError


def samples(metrics: ServeMetrics | PushMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render()[0].decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_rejection_reasons_are_folded_and_bounded() -> None:
    metrics = ServeMetrics()
    for skew in range(5):
        metrics.observe("callback", 401, 0.001, f"timestamp outside the 300s window (skew +{skew}s)")
    for n in range(MAX_REASONS + 50):
        metrics.observe("callback", 400, 0.001, f"Authorization scheme 'x{n}y' not accepted here")
        metrics.observe("callback", 400, 0.001, f"unique reason {chr(0x4E00 + n)}")
    found = samples(metrics)
    key = ("route", "callback"), ("status", "401"), ("reason", "timestamp outside the #s window (skew +#s)")
    assert found[("connector_http_rejections_total", tuple(sorted(key)))] == 5
    reasons = {
        dict(labels)["reason"] for (name, labels) in found if name == "connector_http_rejections_total"
    }
    assert len(reasons) <= MAX_REASONS + 1 and "other" in reasons  # a flood of odd reasons cannot grow it
    assert found[("connector_http_requests_total", (("route", "callback"), ("status", "400")))] == 2 * (
        MAX_REASONS + 50
    )


def test_answered_requests_are_not_rejections() -> None:
    metrics = ServeMetrics()
    metrics.observe("aps", 200, 0.02, None)
    metrics.observe("aps", 503, 0.02, "database down")
    found = samples(metrics)
    assert not [name for name, _ in found if name == "connector_http_rejections_total"]
    assert found[("connector_http_request_duration_seconds_bucket", (("le", "0.025"), ("route", "aps")))] == 2


def test_in_process_gauges() -> None:
    metrics = ServeMetrics()
    metrics.sample(argon2_pending=3, nonce_claims=120, jwks_age=None)
    found = samples(metrics)
    assert found[("connector_argon2_pending", ())] == 3 and found[("connector_nonce_claims", ())] == 120
    assert found[("connector_jwks_age_seconds", ())] == -1  # never fetched (or not in JWT mode)


def test_database_gauges(database: pw.Database) -> None:
    OutboxItem.create(kind="alert", tenant_id="t", datacenter_url="https://dc.example", payload="{}")
    OutboxItem.create(
        kind="alert", tenant_id="t", datacenter_url="https://dc.example", payload="{}", status="dead"
    )
    metrics = ServeMetrics()
    metrics.sample_database()
    found = samples(metrics)
    dc = ("datacenter", "https://dc.example")
    assert found[("connector_outbox_items", (dc, ("state", "pending")))] == 1
    assert found[("connector_outbox_items", (dc, ("state", "dead")))] == 1
    assert found[("connector_outbox_items", (dc, ("state", "delivered")))] == 0
    assert 0 <= found[("connector_outbox_oldest_pending_seconds", (dc,))] < 60
    assert found[("connector_aps_jobs", (("state", "pending"),))] == ApsJob.select().count() == 0
    OutboxItem.update(status="delivered").execute()
    metrics.sample_database()  # a state that emptied goes back to 0, never keeps its old value
    assert samples(metrics)[("connector_outbox_items", (dc, ("state", "pending")))] == 0


def test_push_metrics_count_cycles_and_the_proxy() -> None:
    metrics = PushMetrics()
    metrics.record_cycle("https://dc", SimpleNamespace(sent=5, retried=1, dead=0, outage=None))
    assert samples(metrics)[("connector_proxy_up", ())] == 1
    metrics.record_cycle(
        "https://dc", SimpleNamespace(sent=0, retried=0, dead=0, outage=ProxyFailure("p", "x"))
    )
    found = samples(metrics)
    assert found[("connector_proxy_up", ())] == 0
    dc = ("datacenter", "https://dc")
    assert found[("connector_outbox_deliveries_total", (dc, ("result", "sent")))] == 5
    assert found[("connector_outbox_deliveries_total", (dc, ("result", "retried")))] == 1
    metrics.record_cycle("https://dc", SimpleNamespace(sent=0, retried=0, dead=0, outage=TransportError("x")))
    assert samples(metrics)[("connector_proxy_up", ())] == 1  # the API was down, not the proxy


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"port": 70000}, "port"),
        ({"push_port": -1}, "push_port"),
        ({"port": 9108, "push_port": 9108}, "must differ"),
        ({"port": 0, "push_port": 0}, None),  # any free port, each
        ({}, None),
    ],
)
def test_settings(fields: dict[str, int], error: str | None) -> None:
    if error is None:
        MetricsSettings(**fields)
        return
    with pytest.raises(ValueError, match=error):
        MetricsSettings(**fields)
