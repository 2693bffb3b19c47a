"""``python -m endpoint outbox``: list, retry and purge dead letters; queue demo items."""

from __future__ import annotations

from pathlib import Path

import pytest

from endpoint.commands.cli import main
from models.outbox import DEAD, PENDING, OutboxItem
from tests.endpoint.outbox.conftest import Stack

DC = "https://eu8-cloud.acronis.com"


def dead(tenant: str, error: str = "400: items[0].name") -> OutboxItem:
    return OutboxItem.create(
        kind="workload",
        tenant_id=tenant,
        datacenter_url=DC,
        payload="{}",
        status=DEAD,
        attempts=3,
        last_error=error,
    )


def test_list_shows_dead_letters(stack: Stack, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = dead(stack.tenants[0], "400: bad\nsecond line")
    dead(stack.tenants[1])
    OutboxItem.create(kind="alert", tenant_id=stack.tenants[0], datacenter_url=DC, payload="{}")
    assert main(["outbox", "--config", str(config), "list"]) == 0
    out = capsys.readouterr().out
    assert f"{first.id:>8}  workload" in out and "400: bad second line" in out
    assert "2 item(s) with status dead" in out
    assert (
        main(["outbox", "--config", str(config), "list", "--status", "pending", "--tenant", stack.tenants[0]])
        == 0
    )
    assert "1 item(s) with status pending" in capsys.readouterr().out


def test_retry_requeues_selected_dead_letters(
    stack: Stack, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, c = dead(stack.tenants[0]), dead(stack.tenants[0]), dead(stack.tenants[1])
    assert main(["outbox", "--config", str(config), "retry", "--id", str(a.id)]) == 0
    assert main(["outbox", "--config", str(config), "retry", "--all", "--tenant", stack.tenants[1]]) == 0
    assert "retry: 1 dead letter(s)" in capsys.readouterr().out
    rows = {i.id: i for i in OutboxItem.select()}
    assert (rows[a.id].status, rows[a.id].attempts) == (PENDING, 0)
    assert rows[b.id].status == DEAD and rows[c.id].status == PENDING


def test_purge_deletes_only_dead_letters(stack: Stack, config: Path) -> None:
    dead(stack.tenants[0]), dead(stack.tenants[1])
    pending = OutboxItem.create(kind="alert", tenant_id=stack.tenants[0], datacenter_url=DC, payload="{}")
    assert main(["outbox", "--config", str(config), "purge", "--all"]) == 0
    assert [i.id for i in OutboxItem.select()] == [pending.id]
    assert main(["outbox", "--config", str(config), "purge", "--id", str(pending.id)]) == 0
    assert OutboxItem.select().count() == 1


def test_retry_needs_a_selection(stack: Stack, config: Path) -> None:
    with pytest.raises(SystemExit):
        main(["outbox", "--config", str(config), "retry"])


def test_demo_queues_reproducible_items(
    stack: Stack, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["outbox", "--config", str(config), "demo", "--count", "12", "--seed", "5"]) == 0
    assert main(["outbox", "--config", str(config), "demo", "--count", "12", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "demo: 12 item(s) queued (seed 5)" in out and "demo: 0 item(s) queued" in out
    assert {i.tenant_id for i in OutboxItem.select()} <= set(stack.tenants)
