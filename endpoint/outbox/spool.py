"""Spool directory ingestion: each *.json / *.jsonl file is queued whole or not at all, exactly once.

Producers write ``name.json.tmp`` (or any dot-file) and rename it when complete; only ``*.json`` (one
record) and ``*.jsonl`` (one record per line) are read. After the items of a file are committed it moves
to ``processed/``; a malformed file moves to ``rejected/`` next to ``<name>.reason.txt``. Each item carries
the source key ``spool:<digest of name + content>:<line>`` under a unique index, so a crash between the
commit and the move makes the re-run skip what is already queued instead of duplicating it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from endpoint.errors import PayloadError
from endpoint.outbox.payloads import PayloadRules, QueuedItem, TenantResolver, build_item
from endpoint.outbox.queue import enqueue
from endpoint.parsing import strict_json
from endpoint.parsing.strict_json import JsonRejected

log = logging.getLogger(__name__)

MAX_FILE = 32 * 1024 * 1024
PROCESSED = "processed"
REJECTED = "rejected"


@dataclass
class IngestReport:
    files: int = 0
    items: int = 0  # newly queued
    duplicates: int = 0  # already queued by an earlier (interrupted) run
    rejected: int = 0


class Spool:
    def __init__(self, directory: str | os.PathLike[str], rules: PayloadRules) -> None:
        self.directory = Path(directory)
        self.rules = rules

    def pending_files(self) -> list[Path]:
        """Complete files in arrival order (modification time, then name)."""
        if not self.directory.is_dir():
            return []
        files = [
            p
            for p in self.directory.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix in (".json", ".jsonl")
        ]
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def ingest(self) -> IngestReport:
        """Queue every complete file. Needs a database connection in this thread."""
        report = IngestReport()
        for path in self.pending_files():
            report.files += 1
            try:
                data = path.read_bytes()
                items = self.parse(path.name, data)
            except PayloadError as e:
                self._reject(path, e.message)
                report.rejected += 1
                continue
            except OSError as e:  # vanished or unreadable: leave it for the next pass
                log.warning("spool: %s: %s", path.name, e.strerror)
                continue
            ids = enqueue(items)  # one transaction: the whole file or nothing
            new = sum(1 for i in ids if i is not None)
            report.items += new
            report.duplicates += len(ids) - new
            self._move(path, PROCESSED)
            log.info("spool: %s: %d item(s) queued, %d already queued", path.name, new, len(ids) - new)
        return report

    def parse(self, name: str, data: bytes) -> list[QueuedItem]:
        """Every record of one file, validated, each with its source key. :raise PayloadError:"""
        if len(data) > MAX_FILE:
            raise PayloadError(f"file larger than {MAX_FILE} bytes")
        digest = hashlib.sha256(name.encode("utf-8") + b"\0" + data).hexdigest()[:40]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise PayloadError(f"not UTF-8 (byte {e.start})") from e
        if name.endswith(".jsonl"):
            records = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        else:
            records = [(1, text)]
        if not records:
            raise PayloadError("no records")
        resolver = TenantResolver(self.rules)
        items: list[QueuedItem] = []
        for line, raw in records:
            where = f"line {line}: " if name.endswith(".jsonl") else ""
            try:
                item = build_item(_loads(raw), self.rules, resolver)
            except PayloadError as e:
                raise PayloadError(f"{where}{e.message}") from e
            items.append(
                QueuedItem(
                    item.kind, item.tenant_id, item.datacenter_url, item.payload, f"spool:{digest}:{line}"
                )
            )
        return items

    def _reject(self, path: Path, reason: str) -> None:
        target = self._move(path, REJECTED)
        target.with_name(target.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
        log.warning("spool: %s rejected: %s", path.name, reason)

    def _move(self, path: Path, folder: str) -> Path:
        directory = self.directory / folder
        directory.mkdir(exist_ok=True)
        target = directory / path.name
        if target.exists():  # a producer reused a name: keep both
            target = directory / f"{path.stem}.{time.time_ns()}{path.suffix}"
        os.replace(path, target)
        return target


def _loads(raw: str) -> Any:
    try:
        return strict_json.loads(raw)
    except JsonRejected as e:
        raise PayloadError(f"the record {e}") from None
