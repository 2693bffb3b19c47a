"""configure_logging: text and JSON lines, structured fields, CR/LF escaping, and the level floors."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from endpoint.logsetup import configure_logging
from endpoint.settings import LoggingSettings

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
