"""Fixtures of the outbox tests: mapped tenants on the simulator's DC, settings, payload builders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee as pw
import pytest

from endpoint.config.settings import Settings
from endpoint.outbox.payloads import PayloadRules
from endpoint.outbox.settings import AcronisSettings, DatacenterSettings, OutboxSettings
from models.db import DatabaseSettings
from proxy.session import ProxySettings
from tests.support.builders import create_customer, create_org, make_settings, map_org
from tests.support.simulator_processes import (
    CLIENT_ID,
    CLIENT_SECRET,
    SECRET_ENV,
    Simulator,
    Tls,
    proxy_process,
    simulator,
    simulator_process,
    tls,
)

__all__ = ["proxy_process", "simulator", "simulator_process", "tls"]

TENANTS = (
    "0dd47bbb-d065-447f-ab7c-06e05887078b",
    "954ef80f-5acb-405b-81df-e850606b406d",
    "3b0e5f4c-2d1a-4c8e-9f6b-7a5d4c3b2a10",
)
APP = "vendor.app"
ENVIRON = {SECRET_ENV: CLIENT_SECRET}


def alert(tenant: str, n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "tenantID": tenant,
        "type": f"cti.a.p.am.alert.v1.0~a.p.basic.v1.0~{APP}.malware_detected.v1.0",
        "category": f"cti.a.p.am.category.v1.0~{APP}.protection.v1.0",
        "details": {
            "title": "Malware detected",
            "category": "Protection",
            "description": f"seq {n}",
            "fields": {"Seq": str(n)},
        },
        "ResourceID": f"dev-{n}",
        "ResourceName": f"pc-{n}",
        **extra,
    }


def workload(tenant: str, n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "tenant_id": tenant,
        "type": f"cti.a.p.wm.workload.v1.0~a.p.wm.aspect.v1.0~{APP}.virtual_machine.v1.0",
        "name": f"vm-{n}",
        "attributes": {"seq": str(n)},
        **extra,
    }


@dataclass
class Stack:
    """Settings pointing at the simulator (optionally through a proxy) with test-speed timings."""

    settings: Settings
    rules: PayloadRules
    tenants: tuple[str, ...]


def build_settings(
    db_settings: DatabaseSettings,
    sim_url: str,
    tls: Tls,
    spool: Path,
    *,
    proxy: str | None = None,
    acronis: dict[str, Any] | None = None,
    **outbox: Any,
) -> Settings:
    dcs = (DatacenterSettings(sim_url, CLIENT_ID, SECRET_ENV),)
    return make_settings(
        database=db_settings,
        proxy=ProxySettings(url=proxy, ca_bundle=tls.ca_pem, read_timeout=5),
        acronis=AcronisSettings(
            **{
                "datacenters": dcs,
                "max_tries": 2,
                "retry_budget": 2.0,
                "backoff_base": 0.01,
                "backoff_max": 0.05,
                **(acronis or {}),
            }
        ),
        outbox=OutboxSettings(
            **{
                "spool_dir": str(spool),
                "backoff_base": 0.01,
                "backoff_max": 0.05,
                "outage_backoff_max": 0.2,
                "poll_interval": 0.05,
                "worker_id": "test-worker",
                **outbox,
            }
        ),
    )


def map_tenants(dc_url: str) -> None:
    partner = create_org("Partner")
    for n, tenant in enumerate(TENANTS):
        map_org(create_customer(f"Customer {n}", partner), tenant, dc_url)


@pytest.fixture
def stack(
    database: pw.Database, db_settings: DatabaseSettings, simulator: Simulator, tls: Tls, tmp_path: Path
) -> Stack:
    settings = build_settings(db_settings, simulator.url, tls, tmp_path / "spool")
    map_tenants(simulator.url)
    return Stack(settings, PayloadRules.from_settings(settings), TENANTS)


@pytest.fixture
def rules(database: pw.Database) -> PayloadRules:
    """Rules for the production-like DC of tests.support.builders, with every tenant mapped there."""
    from tests.support.builders import DATACENTER

    map_tenants(DATACENTER)
    return PayloadRules(
        APP,
        {DATACENTER: CLIENT_ID},
        ("cti.a.ui.item.v1.0~a.ui.ext_p.workload_actions.action.v1.0~vendor.app.open_console.v1.0",),
    )


def write_config(
    path: Path, db: DatabaseSettings, sim: Simulator, tls: Tls, spool: Path, proxy: str | None = None
) -> Path:
    lines = [
        "[database]",
        f'url = "{db.url}"',
        "[proxy]",
        f'ca_bundle = "{tls.ca_pem}"',
        *([f'url = "{proxy}"'] if proxy else []),
        "[acronis]",
        "max_tries = 2",
        "retry_budget = 2.0",
        "backoff_base = 0.01",
        "backoff_max = 0.05",
        "[[acronis.datacenters]]",
        f'url = "{sim.url}"',
        f'client_id = "{CLIENT_ID}"',
        f'client_secret_env = "{SECRET_ENV}"',
        "[outbox]",
        f'spool_dir = "{spool}"',
        "poll_interval = 0.05",
        "backoff_base = 0.01",
        "backoff_max = 0.05",
        "outage_backoff_max = 0.2",
        'worker_id = "push-test"',
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def config(
    stack: Stack, db_settings: DatabaseSettings, simulator: Simulator, tls: Tls, tmp_path: Path
) -> Path:
    return write_config(tmp_path / "connector.toml", db_settings, simulator, tls, tmp_path / "spool")
