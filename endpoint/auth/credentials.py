"""Pure decoding of the X-CyberApp-Auth and X-CyberApp-Extra headers (acronis-callbacks.md §2.1, §2.2)."""

from __future__ import annotations

import binascii
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from endpoint.errors import AuthenticationFailed, PayloadError
from endpoint.parsing import strict_json
from endpoint.parsing.strict_json import JsonRejected

log = logging.getLogger(__name__)

EXTRA_MESSAGE = "Malformed request: X-CyberApp-Extra must be base64 of a JSON object."

_B64_ALPHABET = re.compile(rb"[A-Za-z0-9+/=]*")
# Control characters (C0, DEL, C1 incl. NEL) and Unicode line/paragraph separators: the identity is
# logged, so any of these would allow log injection (security-checklist.md §11 items 30, 32).
_IDENTITY_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True, slots=True)
class Credentials:
    """The decoded X-CyberApp-Auth value; ``repr()`` never shows the password."""

    identity: str
    password: str = field(repr=False)


class _Malformed(ValueError):
    """Internal: why a header failed to decode (a log reason, never containing the value)."""


def decode_auth_header(value: str | None, max_bytes: int) -> Credentials:
    """Decode ``base64("<identity>:" + JSON object with "password")``.

    ``value`` is the header as Tornado hands it over: a latin-1 decoded str.
    :raise AuthenticationFailed: with the generic client message and a specific log ``reason``.
    """
    if not value:
        raise AuthenticationFailed(reason="X-CyberApp-Auth: missing")
    # Checked before any decoding, so an oversized header costs nothing; the value is base64 text,
    # so its length in characters is its length in bytes.
    if len(value) > max_bytes:
        raise AuthenticationFailed(reason=f"X-CyberApp-Auth: longer than {max_bytes} bytes")
    try:
        text = _strict_b64_utf8(value)
    except _Malformed as e:
        raise AuthenticationFailed(reason=f"X-CyberApp-Auth: {e}") from None
    identity, sep, secrets_json = text.partition(":")  # the FIRST ':' (identity never contains one)
    if not sep:
        raise AuthenticationFailed(reason="X-CyberApp-Auth: no ':' separator")
    if not identity:
        raise AuthenticationFailed(reason="X-CyberApp-Auth: empty identity")
    if _IDENTITY_FORBIDDEN.search(identity):
        raise AuthenticationFailed(reason="X-CyberApp-Auth: control characters in identity")
    try:
        secrets = strict_json.loads(secrets_json)
    except JsonRejected as e:
        raise AuthenticationFailed(reason=f"X-CyberApp-Auth secrets: {e}") from None
    if not isinstance(secrets, dict):
        raise AuthenticationFailed(reason="X-CyberApp-Auth secrets: not a JSON object")
    password = secrets.get("password")
    if not isinstance(password, str):
        raise AuthenticationFailed(reason="X-CyberApp-Auth: password missing or not a string")
    if not password:
        raise AuthenticationFailed(reason="X-CyberApp-Auth: empty password")
    try:
        # JSON escapes can produce lone surrogates ("\ud800") that UTF-8 cannot encode; argon2 would
        # then fail inside the hash executor, so refuse them here.
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise AuthenticationFailed(reason="X-CyberApp-Auth: password is not valid Unicode") from None
    return Credentials(identity=identity, password=password)


def decode_extra_header(value: str | None) -> dict[str, Any]:
    """Decode X-CyberApp-Extra: absent means ``{}``, otherwise strict base64 of a UTF-8 JSON object.

    :raise PayloadError: when present but not base64 of a JSON object.
    """
    if value is None:
        return {}
    try:
        decoded = strict_json.loads(_strict_b64_utf8(value))
    except (_Malformed, JsonRejected) as e:
        raise PayloadError(EXTRA_MESSAGE, reason=f"X-CyberApp-Extra: {e}") from None
    if not isinstance(decoded, dict):
        raise PayloadError(EXTRA_MESSAGE, reason="X-CyberApp-Extra: not a JSON object")
    return decoded


def _strict_b64_utf8(value: str) -> str:
    """Strict base64 (standard alphabet, exact padding, canonical) of strict UTF-8 text.

    :raise _Malformed: naming what was wrong.
    """
    try:
        # Tornado decodes header bytes as latin-1; encoding back recovers the bytes on the wire.
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise _Malformed("characters outside latin-1") from None
    if not _B64_ALPHABET.fullmatch(raw):
        raise _Malformed("not base64 (characters outside the alphabet)")
    try:
        # strict_mode: no data after '=', no leading or discontinuous '=' (the alphabet is checked above).
        data = binascii.a2b_base64(raw, strict_mode=True)
    except binascii.Error:
        raise _Malformed("not base64 (bad padding)") from None
    # One byte string, one accepted encoding: non-zero trailing bits would let two header values
    # carry the same credentials.
    if binascii.b2a_base64(data, newline=False) != raw:
        raise _Malformed("not canonical base64")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed("not UTF-8") from None
