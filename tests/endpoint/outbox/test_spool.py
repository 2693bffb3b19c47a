"""Spool ingestion: whole files or nothing, processed/ after the commit, rejected/ with a reason, no dupes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from endpoint.outbox.payloads import PayloadRules
from endpoint.outbox.spool import PROCESSED, REJECTED, Spool
from models.outbox import OutboxItem
from tests.endpoint.outbox.conftest import TENANTS, alert, workload


def record(kind: str, n: int, tenant: str = TENANTS[0], **extra: Any) -> dict[str, Any]:
    body = alert(tenant, n) if kind == "alert" else workload(tenant, n)
    return {"kind": kind, **body, **extra}


def drop(directory: Path, name: str, content: str | bytes, mtime: int | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def jsonl(*records: dict[str, Any]) -> str:
    return "\n".join(json.dumps(r) for r in records) + "\n"


def test_json_and_jsonl_files_are_queued_then_moved(rules: PayloadRules, tmp_path: Path) -> None:
    drop(tmp_path, "a.json", json.dumps(record("alert", 1)), mtime=1000)
    drop(tmp_path, "b.jsonl", jsonl(record("workload", 2), record("alert", 3)) + "\n\n", mtime=1001)
    report = Spool(tmp_path, rules).ingest()
    assert (report.files, report.items, report.rejected) == (2, 3, 0)
    assert sorted(p.name for p in (tmp_path / PROCESSED).iterdir()) == ["a.json", "b.jsonl"]
    rows = list(OutboxItem.select().order_by(OutboxItem.id))
    assert [r.kind for r in rows] == ["alert", "workload", "alert"]  # arrival order: a.json first
    assert rows[2].source.endswith(":2") and rows[0].source.startswith("spool:")


def test_one_bad_line_rejects_the_whole_file_with_a_reason(rules: PayloadRules, tmp_path: Path) -> None:
    drop(tmp_path, "batch.jsonl", jsonl(record("alert", 1), record("alert", 2, tenant_id=TENANTS[0])))
    report = Spool(tmp_path, rules).ingest()
    assert report.rejected == 1 and OutboxItem.select().count() == 0
    reason = (tmp_path / REJECTED / "batch.jsonl.reason.txt").read_text()
    assert reason.startswith("line 2: alerts use tenantID")
    assert (tmp_path / REJECTED / "batch.jsonl").exists() and not (tmp_path / "batch.jsonl").exists()


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("trunc.json", '{"kind": "alert", ', "the record is not valid JSON"),
        ("nan.json", '{"kind": "alert", "x": NaN}', "NaN or Infinity"),
        ("dup.json", '{"kind": "alert", "kind": "workload"}', "the record has duplicate keys"),
        ("latin.json", b'{"kind": "alert", "x": "\xe9"}', "not UTF-8"),
        ("empty.jsonl", "\n\n", "no records"),
        ("list.json", "[]", "JSON object"),
        ("deep.json", "[" * 100_000, "nests deeper than"),
    ],
)
def test_malformed_files_go_to_rejected(
    rules: PayloadRules, tmp_path: Path, name: str, content: str | bytes, reason: str
) -> None:
    drop(tmp_path, name, content)
    assert Spool(tmp_path, rules).ingest().rejected == 1
    assert reason in (tmp_path / REJECTED / f"{name}.reason.txt").read_text()


def test_incomplete_and_foreign_files_are_left_alone(rules: PayloadRules, tmp_path: Path) -> None:
    drop(tmp_path, "a.json.tmp", json.dumps(record("alert", 1)))
    drop(tmp_path, ".b.json", json.dumps(record("alert", 2)))
    drop(tmp_path, "notes.txt", "hello")
    assert Spool(tmp_path, rules).ingest().files == 0
    assert Spool(tmp_path / "missing", rules).ingest().files == 0


def test_crash_between_commit_and_move_does_not_duplicate(
    rules: PayloadRules, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop(tmp_path, "batch.jsonl", jsonl(*(record("workload", n) for n in range(5))))
    real_move = Spool._move

    def crash(self: Spool, path: Path, folder: str) -> Path:
        raise SystemExit("killed after the commit, before the move")

    monkeypatch.setattr(Spool, "_move", crash)
    with pytest.raises(SystemExit):
        Spool(tmp_path, rules).ingest()
    assert OutboxItem.select().count() == 5 and (tmp_path / "batch.jsonl").exists()
    monkeypatch.setattr(Spool, "_move", real_move)
    report = Spool(tmp_path, rules).ingest()
    assert (report.items, report.duplicates) == (0, 5)
    assert OutboxItem.select().count() == 5 and (tmp_path / PROCESSED / "batch.jsonl").exists()


def test_reused_file_names_keep_both_copies(rules: PayloadRules, tmp_path: Path) -> None:
    drop(tmp_path, "x.json", json.dumps(record("alert", 1)))
    Spool(tmp_path, rules).ingest()
    drop(tmp_path, "x.json", json.dumps(record("alert", 2)))
    Spool(tmp_path, rules).ingest()
    assert len(list((tmp_path / PROCESSED).iterdir())) == 2 and OutboxItem.select().count() == 2
