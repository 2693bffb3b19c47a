"""Deterministic demo alerts and workloads for the local stack: the same seed always yields the same items."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from typing import Any

from endpoint.outbox.payloads import PayloadRules, QueuedItem, TenantResolver, build_item
from endpoint.outbox.queue import enqueue
from models import OrganizationMapping
from proxy.origins import normalize_datacenter_url

ALERTS = (
    ("malware_detected", "protection", "Malware detected", "Protection"),
    ("backup_failed", "backup", "Backup failed", "Backup"),
    ("license_expiring", "licensing", "License expires soon", "Licensing"),
)
WORKLOAD_KINDS = ("virtual_machine", "server", "workstation")
FILES = ("C:\\temp\\invoice.exe", "/tmp/.x/miner", "D:\\share\\macro.docm")


def demo_records(seed: int, count: int, tenants: Sequence[str], app_code: str) -> list[dict[str, Any]]:
    """``count`` spool-style records spread over ``tenants`` (Acronis tenant ids), reproducible per seed."""
    if not tenants:
        return []
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    for n in range(count):
        tenant = tenants[rng.randrange(len(tenants))]
        device = f"{rng.choice(('web', 'db', 'pc', 'nas'))}-{rng.randrange(1, 100):02d}"
        if rng.random() < 0.5:
            code, category, title, label = ALERTS[rng.randrange(len(ALERTS))]
            records.append(
                {
                    "kind": "alert",
                    "tenantID": tenant,
                    "type": f"cti.a.p.am.alert.v1.0~a.p.basic.v1.0~{app_code}.{code}.v1.0",
                    "category": f"cti.a.p.am.category.v1.0~{app_code}.{category}.v1.0",
                    "details": {
                        "title": title,
                        "category": label,
                        "description": f"Demo item {n} (seed {seed})",
                        "fields": {
                            "File": rng.choice(FILES),
                            "Action": rng.choice(("Quarantined", "Logged")),
                        },
                    },
                    "ResourceID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "ResourceName": device,
                }
            )
        else:
            kind = WORKLOAD_KINDS[rng.randrange(len(WORKLOAD_KINDS))]
            records.append(
                {
                    "kind": "workload",
                    "tenant_id": tenant,
                    "name": device,
                    "enabled": rng.random() < 0.9,
                    "type": f"cti.a.p.wm.workload.v1.0~a.p.wm.aspect.v1.0~{app_code}.{kind}.v1.0",
                    "attributes": {
                        "hostname": device,
                        "ip": f"10.0.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                    },
                }
            )
    return records


def mapped_tenants(rules: PayloadRules) -> list[str]:
    """Acronis tenant ids mapped on a configured DC, sorted (so the seed alone decides the output)."""
    rows = OrganizationMapping.select(
        OrganizationMapping.acronis_tenant_id, OrganizationMapping.datacenter_url
    )
    return sorted(
        r.acronis_tenant_id for r in rows if normalize_datacenter_url(r.datacenter_url) in rules.client_ids
    )


def enqueue_demo(seed: int, count: int, rules: PayloadRules) -> int:
    """Queue the demo items; re-running the same seed queues nothing new (source ``demo:<seed>:<n>``)."""
    resolver = TenantResolver(rules)
    items = []
    for n, record in enumerate(demo_records(seed, count, mapped_tenants(rules), rules.app_code)):
        item = build_item(record, rules, resolver)
        items.append(
            QueuedItem(item.kind, item.tenant_id, item.datacenter_url, item.payload, f"demo:{seed}:{n}")
        )
    return sum(1 for i in enqueue(items) if i is not None)
