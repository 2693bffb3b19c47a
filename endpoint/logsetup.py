"""Logging configuration for the entry points: text or JSON lines, structured fields, safe values."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

from endpoint.settings import LoggingSettings


def _safe(value: Any) -> Any:
    """Keep values on one line: a CR/LF inside a field cannot forge a log line (log injection)."""
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
    return value


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            line += " " + " ".join(f"{k}={_safe(v)}" for k, v in fields.items() if v is not None)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        document.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure_logging(settings: LoggingSettings, stream: TextIO | None = None) -> None:
    """Called once by an entry point; importing modules never configures logging."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level.upper())
    # oauthlib logs the full signature base string at DEBUG (security-checklist §2.4 item 9),
    # requests-oauthlib the signed Authorization header of our controller callbacks, and
    # peewee logs every SQL statement with its parameters (secrets, hashes): never below INFO.
    for chatty in ("oauthlib", "requests_oauthlib", "peewee"):
        logging.getLogger(chatty).setLevel(max(logging.INFO, root.level))
    # Tornado's own access log would duplicate ours without the structured fields.
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
