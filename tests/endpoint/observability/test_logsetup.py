"""configure_logging: text and JSON lines, structured fields, CR/LF escaping, and the level floors."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
import time
from collections.abc import Iterator

import pytest

from endpoint.config.sections import LoggingSettings
from endpoint.observability.logsetup import RejectionSampler, configure_logging, rfc3339

TOUCHED = ("oauthlib", "peewee", "tornado.access")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {name: logging.getLogger(name).level for name in TOUCHED})
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def configured(level: str = "INFO", fmt: str = "text") -> io.StringIO:
    stream = io.StringIO()
    configure_logging(LoggingSettings(level=level, format=fmt), stream)
    return stream


def test_text_lines_carry_fields_as_key_value() -> None:
    stream = configured()
    fields = {"method": "POST", "status": 401, "principal": None, "ms": 1.5}
    logging.getLogger("endpoint.access").info("request %s", "done", extra={"fields": fields})
    line = stream.getvalue()
    assert line.endswith(" INFO endpoint.access: request done method=POST status=401 ms=1.5\n")
    assert "principal" not in line  # None values are left out


def test_text_fields_cannot_forge_log_lines() -> None:
    stream = configured()
    forged = "alice\r\n2026-01-01 00:00:00,000 INFO endpoint.access: request user=admin\\"
    logging.getLogger("t").warning("login failed", extra={"fields": {"user": forged}})
    output = stream.getvalue()
    assert output.count("\n") == 1  # one record, one line
    assert "user=alice\\r\\n2026-01-01 00:00:00,000 INFO endpoint.access: request user=admin\\\\" in output


def test_text_without_fields_is_the_plain_format() -> None:
    stream = configured()
    logging.getLogger("t").error("plain")
    assert stream.getvalue().endswith(" ERROR t: plain\n")


def test_json_emits_one_object_per_record_with_fields_merged() -> None:
    stream = configured(fmt="json")
    log = logging.getLogger("endpoint.access")
    log.info("request", extra={"fields": {"status": 200, "path": "/callback\n"}})
    log.warning("second %d", 2)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "INFO" and first["logger"] == "endpoint.access" and first["msg"] == "request"
    assert (first["status"], first["path"]) == (200, "/callback\n")  # JSON escaping keeps it on one line
    assert set(first) == {"ts", "level", "logger", "msg", "status", "path"}
    assert second["msg"] == "second 2" and "status" not in second


def test_json_includes_exceptions_on_the_same_line() -> None:
    stream = configured(fmt="json")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("t").exception("failed")
    [line] = stream.getvalue().splitlines()
    assert "ValueError: boom" in json.loads(line)["exc"]


@pytest.mark.parametrize(
    ("root", "chatty"), [("DEBUG", logging.INFO), ("INFO", logging.INFO), ("WARNING", logging.WARNING)]
)
def test_oauthlib_and_peewee_never_below_info(root: str, chatty: int) -> None:
    stream = configured(level=root)
    assert logging.getLogger().level == logging.getLevelName(root)
    for name in ("oauthlib", "peewee"):
        assert logging.getLogger(name).getEffectiveLevel() == chatty
        logging.getLogger(name + ".sub").debug("signature base string SECRET")
    assert "SECRET" not in stream.getvalue()


def test_debug_root_still_shows_our_debug_lines() -> None:
    stream = configured(level="DEBUG")
    logging.getLogger("endpoint.auth.oauth").debug("visible")
    assert "visible" in stream.getvalue()


def test_tornado_access_is_raised_to_warning() -> None:
    stream = configured(level="DEBUG")
    assert logging.getLogger("tornado.access").level == logging.WARNING
    logging.getLogger("tornado.access").info("200 GET /healthz")
    assert stream.getvalue() == ""


def test_configuring_twice_keeps_one_handler() -> None:
    configured()
    stream = configured()
    assert len(logging.getLogger().handlers) == 1
    logging.getLogger("t").warning("once")
    assert stream.getvalue().count("once") == 1


# -- escaping: nothing a reader could take for a line break -----------------------------------------------
LINE_BREAKERS = ["\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("char", LINE_BREAKERS + ["\x00", "\x1b", "\x7f", "\x9b"], ids=repr)
def test_no_line_breaking_or_control_character_reaches_the_log(fmt: str, char: str) -> None:
    stream = configured(fmt=fmt)
    path = f"/callback{char}2026-01-01 INFO endpoint.access: forged"
    logging.getLogger("endpoint.access").info("request", extra={"fields": {"path": path}})
    logging.getLogger("t").warning("message with %s inside", f"a{char}b")
    output = stream.getvalue()
    lines = output.splitlines()  # splits on NEL, U+2028/2029, FS, GS, RS, VT and FF too
    assert len(lines) == 2
    assert all(char not in line for line in lines)
    if fmt == "json":
        first, second = (json.loads(line) for line in output.splitlines())
        assert first["path"] == path and second["msg"] == f"message with a{char}b inside"  # lossless


def test_text_escapes_are_readable_and_unambiguous() -> None:
    stream = configured()
    logging.getLogger("t").warning("m", extra={"fields": {"v": "a\x85b\u2028c\\x85\td\x7f"}})
    assert "v=a\\x85b\\u2028c\\\\x85\\td\\x7f\n" in stream.getvalue()


def test_a_traceback_keeps_its_lines_after_the_escaped_message() -> None:
    stream = configured()
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("t").exception("failed\nforged", extra={"fields": {"k": "v"}})
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith("ERROR t: failed\\nforged k=v")
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "ValueError: boom"


# -- rejection sampling -----------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sampled_logger(sampler: RejectionSampler) -> tuple[logging.Logger, list[logging.LogRecord]]:
    written: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            written.append(record)

    handler = Collect()
    handler.addFilter(sampler)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    return logging.getLogger("endpoint.access"), written


def test_the_first_rejections_of_each_reason_are_written_and_the_rest_summed_up() -> None:
    clock = Clock()
    sampler = RejectionSampler(interval=10, verbatim=2, clock=clock)
    log, written = sampled_logger(sampler)
    for i in range(50):
        log.info("request", extra={"rejection": f"401 timestamp outside the window (skew +{300 + i}s)"})
        log.info("request", extra={"rejection": f"401 nonce 'n{i}' already used"})
    log.info("request", extra={"fields": {"status": 200}})  # not a rejection: always written
    assert [r.getMessage() for r in written] == ["request"] * 5
    clock.now += 10
    log.info("request", extra={"rejection": "401 nonce 'x' already used"})  # a new interval begins
    summary = written[5]
    assert summary.name == "endpoint.rejections" and summary.levelno == logging.WARNING
    assert summary.getMessage().startswith("96 rejection lines held back over 10s")
    assert summary.fields == {  # type: ignore[attr-defined]
        "401 timestamp outside the window (skew +#s)": 48,
        "401 nonce # already used": 48,
    }
    assert len(written) == 7  # the new interval's first rejection is written again


def test_held_back_counts_are_written_when_the_interval_ends_without_more_traffic() -> None:
    sampler = RejectionSampler(interval=0.05, verbatim=1)
    log, written = sampled_logger(sampler)
    for _ in range(4):
        log.info("request", extra={"rejection": "login wrong password"})
    assert len(written) == 1
    deadline = time.monotonic() + 2
    while len(written) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert written[1].getMessage().startswith("3 rejection lines held back")
    assert written[1].fields == {"login wrong password": 3}  # type: ignore[attr-defined]


def test_varying_reasons_cannot_escape_the_sampler() -> None:
    clock = Clock()
    sampler = RejectionSampler(interval=10, verbatim=1, clock=clock)
    log, written = sampled_logger(sampler)
    for i in range(1000):
        log.info("request", extra={"rejection": f"400 unknown scheme {chr(0x4E00 + i)}"})
    assert len(written) <= 101  # at most one line per tracked reason, plus "other reasons"
    sampler.flush()
    assert sum(written[-1].fields.values()) + len(written) - 1 == 1000  # type: ignore[attr-defined]


def test_configure_logging_installs_the_sampler_from_the_settings() -> None:
    stream = io.StringIO()
    configure_logging(LoggingSettings(rejection_interval=60, rejections_verbatim=3), stream)
    log = logging.getLogger("endpoint.access")
    for _ in range(10):
        log.info("request", extra={"fields": {"status": 401}, "rejection": "401 bad signature"})
    assert stream.getvalue().count("status=401") == 3


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_timestamps_are_rfc3339_utc_with_milliseconds(fmt: str) -> None:
    stream = configured(fmt=fmt)
    before = time.time()
    logging.getLogger("t").warning("when")
    line = stream.getvalue().splitlines()[0]
    stamp = json.loads(line)["ts"] if fmt == "json" else line.split(" ", 1)[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp), stamp
    parsed = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    assert before - 0.002 <= parsed <= time.time()


@pytest.mark.parametrize(
    "created",
    [1764935443.1234, 1764935443.9999996, 1174818252.3339996, 1764935444.0, 1764935443.0004999, 0.5],
)
def test_the_cached_second_formats_as_datetime_would(created: float) -> None:
    expected = dt.datetime.fromtimestamp(created, tz=dt.UTC).isoformat(timespec="milliseconds")
    assert rfc3339(created) == expected.replace("+00:00", "Z")
    assert rfc3339(created + 1) != rfc3339(created)  # the cache follows the second


def test_records_carry_no_thread_process_or_caller_details_nobody_formats() -> None:
    configure_logging(LoggingSettings(), io.StringIO())
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logger = logging.getLogger("endpoint.test.details")
    logger.addHandler(handler)
    try:
        logger.warning("hello")
    finally:
        logger.removeHandler(handler)
    [record] = seen
    assert (record.threadName, record.processName, record.pathname) == (None, None, "(unknown file)")
