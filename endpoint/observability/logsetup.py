"""Logging configuration for the entry points: text or JSON lines, structured fields, safe values.

Two guards apply to every line, whatever logger wrote it:
- Escaping: no character a log reader could take for a line break (C0, DEL, C1 with NEL, U+2028/2029)
  is ever written raw, in a field or in the message, in either format (log injection, line splitting).
- Rejection sampling: records marked as rejections (``extra={"rejection": "<reason>"}``: refused logins,
  4xx and 503 access lines, and the lines a database outage repeats per request: a unit of work run
  again after a lost connection, a refused request's nonce not recorded) are written verbatim for the
  first few of each reason per interval; the rest are counted and summed up in one line per interval, so
  a flood of bad requests, or an outage under load, cannot fill the disk.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # settings imports the metrics, which use rejection_key from here
    from endpoint.config.sections import LoggingSettings

# Every character str.splitlines() splits on, the other C0/C1 controls, DEL, and the backslash itself.
_UNSAFE = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_VARIABLE = re.compile(r"[0-9]+|'[^']*'|\"[^\"]*\"")  # numbers and quoted values within a reason
_KEY_CHARS = 80  # the part of a normalized reason that tells reasons apart
_MAX_KEYS = 100  # distinct reasons tracked per interval; more are counted as "other reasons"


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` on one line, every control or line-breaking character as a visible escape."""
    return _UNSAFE.sub(_escaped, text)


# The last whole second formatted and its text up to the seconds; one tuple, replaced in one assignment,
# so a thread never pairs one second with another's text.
_second: tuple[int, str] = (-1, "")


def rfc3339(created: float) -> str:
    """A record's time as RFC 3339 in UTC with milliseconds (``2026-12-05T11:40:43.123Z``): sortable, and
    unambiguous across hosts and daylight-saving changes. The part up to the seconds is formatted once
    a second."""
    global _second
    whole = int(created)
    micro = round((created - whole) * 1_000_000)  # rounded as datetime rounds a timestamp
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    cached = _second
    if cached[0] != whole:
        cached = _second = (whole, dt.datetime.fromtimestamp(whole, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{cached[1]}.{micro // 1000:03d}Z"


class _Rfc3339:
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return rfc3339(record.created)


class TextFormatter(_Rfc3339, logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's API name
        # The message with its arguments interpolated; a traceback appended after it keeps its lines.
        line = super().formatMessage(record)
        fields = getattr(record, "fields", None)
        if fields:  # escaped with the message, in one pass (keys are identifiers, values any text)
            line += " " + " ".join([f"{k}={v}" for k, v in fields.items() if v is not None])
        return escape(line)


class JsonFormatter(_Rfc3339, logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        document.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        # ensure_ascii escapes every non-ASCII character (C1, U+2028/2029) and json every C0 one; DEL is
        # the one control character JSON leaves raw.
        return json.dumps(document, default=str).replace("\x7f", "\\u007f")


def rejection_key(reason: str) -> str:
    """A reason with its variable parts (numbers, quoted values) folded, so repeats share one count; a
    leading HTTP status stays as it is."""
    status, _, rest = reason.partition(" ")
    if len(status) == 3 and status.isdigit():
        return f"{status} {_VARIABLE.sub('#', rest)}"[:_KEY_CHARS]
    return _VARIABLE.sub("#", reason)[:_KEY_CHARS]


class RejectionSampler(logging.Filter):
    """Per ``interval`` seconds, lets ``verbatim`` records of each rejection reason through; counts the rest.

    The counts are written as one WARNING line when the interval ends (a timer thread, armed only while
    something was held back), so a flood costs one line per interval instead of one per request.
    """

    def __init__(self, interval: float, verbatim: int, clock: Any = time.monotonic) -> None:
        super().__init__()
        self._interval = interval
        self._verbatim = verbatim
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._seen: Counter[str] = Counter()
        self._held: Counter[str] = Counter()
        self._timer: threading.Timer | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        reason = getattr(record, "rejection", None)
        if reason is None:
            return True
        with self._lock:
            if self._clock() - self._started >= self._interval:
                self._flush_locked()
            key = rejection_key(str(reason))
            if key not in self._seen and len(self._seen) >= _MAX_KEYS:
                key = "other reasons"
            self._seen[key] += 1
            if self._seen[key] <= self._verbatim:
                return True
            self._held[key] += 1
            if self._timer is None:
                self._timer = threading.Timer(self._interval, self.flush)
                self._timer.daemon = True
                self._timer.start()
            return False

    def flush(self) -> None:
        """Write the summary of what was held back, and start a new interval."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        held, seconds = self._held, self._clock() - self._started
        self._started, self._seen, self._held = self._clock(), Counter(), Counter()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if held:
            logging.getLogger("endpoint.rejections").warning(
                "%d rejection lines held back over %.0fs (the first %d of each reason were written)",
                sum(held.values()),
                seconds,
                self._verbatim,
                extra={"fields": dict(held.most_common())},
            )


def configure_logging(settings: LoggingSettings, stream: TextIO | None = None) -> None:
    """Called once by an entry point; importing modules never configures logging."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RejectionSampler(settings.rejection_interval, settings.rejections_verbatim))
    # Neither format shows the thread, process or source line: don't gather them for every record (the
    # logging HOWTO's "Optimization"; findCaller alone walks the stack per line).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None  # type: ignore[attr-defined]
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
