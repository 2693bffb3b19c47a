"""One or two lines a person can act on, for a database that cannot be opened or reached."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_QUOTED = r"""["']([^"']+)["']"""  # a quoted name in a driver message
# (pattern on the driver's message, explanation with {0} = the first captured value, if any)
_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), text)
    for pattern, text in (
        (
            r"connection refused",
            "nothing accepts connections there: is the server running? Fix the host/port",
        ),
        (
            r"could not translate host name|Name or service not known|nodename nor servname",
            "unknown host: fix the host",
        ),
        (r"timeout expired|timed out", "no answer within the connect timeout: is the host reachable?"),
        (
            rf"database {_QUOTED} does not exist|Unknown database {_QUOTED}",
            "the database does not exist: create it or fix its name",
        ),
        (
            rf"role {_QUOTED} does not exist",
            "the user does not exist on the server: create it or fix the user",
        ),
        (
            r"password authentication failed|Access denied for user|no password supplied",
            "the server refused the credentials: fix the user or password (percent-encode specials)",
        ),
        (
            r"no such database file",
            "the SQLite file does not exist: run `connector init` first, or fix the path",
        ),
        (
            r"file is not a database",
            "the file is not a SQLite database: point it at the connector's database",
        ),
        (
            r"unable to open database file",
            "the file cannot be opened: does its directory exist and is it writable?",
        ),
        (
            r"database is locked",
            "the SQLite file is locked by another process: stop it or use a server database",
        ),
    )
)


def redacted(url: str) -> str:
    """``url`` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def describe_database_error(error: BaseException, url: str) -> str:
    """``database.url (<url, no password>): <what happened>: <the fix>``, on one line."""
    detail = " ".join(str(getattr(error, "orig", None) or error).split())
    for pattern, text in _RULES:
        if pattern.search(detail):
            reason = text
            break
    else:
        reason = detail[:200] or type(error).__name__
    cause = _cause(detail)
    return f"database.url ({redacted(url)}): {reason}" + (f" [{cause}]" if cause not in reason else "")


def _cause(detail: str) -> str:
    """The driver's own words, short: what an operator would search for."""
    detail = re.sub(r"^\(\d+, ", "", detail).strip("()\"' ")
    return detail[:160]
