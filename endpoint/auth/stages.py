"""A route's verification pipeline: the transport stage chosen by the Authorization scheme, then the end user.

Each route declares its ``Stages`` in the URL table (endpoint/web/app.py): APS routes verify the transport
only, ``/callback`` the transport and then the end user. Transport stages run on the headers, before the
body is read, and never fall back from a failed scheme to another (acronis-callbacks.md §1): the scheme
of the Authorization header picks exactly one stage. The Acronis gateway's Bearer JWT is one more
``TransportStage``; no callback changes for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from endpoint.auth.end_user import EndUserStage
from endpoint.auth.identity import VerifiedConsumer
from endpoint.auth.oauth import InboundRequest
from endpoint.errors import AuthenticationFailed, PayloadError

# The one cap on the Authorization header, checked before any parsing (a JWT fits, a flood does not).
MAX_AUTHORIZATION_BYTES = 8192
# Headers the pipeline reads as single values: a repeat is refused (400), because proxies, audit logs and
# Tornado (which joins repeats with ",") would each see a different credential.
SINGLETON_HEADERS = ("Authorization", "Content-Type", "Content-Length", "X-CyberApp-Auth", "X-CyberApp-Extra")


class TransportStage(Protocol):
    scheme: str  # the Authorization scheme it serves, lower case ("oauth")

    def verify(self, request: InboundRequest) -> VerifiedConsumer:
        """Headers only, no I/O. :raise PayloadError: malformed (400). :raise AuthenticationFailed: (401)."""
        ...

    def check_body(self, consumer: VerifiedConsumer, body: bytes, content_type: str) -> None:
        """Whatever the scheme binds to the body, once it arrived. :raise ServiceError:"""
        ...


def reject_repeated(headers: Mapping[str, list[str]]) -> None:
    """:raise PayloadError: a singleton header sent more than once (``headers``: name -> every value)."""
    for name in SINGLETON_HEADERS:
        if len(headers.get(name, ())) > 1:
            raise PayloadError(reason=f"{name} header sent more than once")


@dataclass(frozen=True, slots=True)
class Stages:
    """What one route verifies: one of ``transport`` (by scheme), then ``end_user`` when set."""

    transport: tuple[TransportStage, ...]
    end_user: EndUserStage | None = None

    def verify_transport(self, request: InboundRequest) -> tuple[TransportStage, VerifiedConsumer]:
        """:raise PayloadError: (400). :raise AuthenticationFailed: no, unknown or failed scheme (401)."""
        header = request.headers.get("Authorization")
        if not header:
            raise AuthenticationFailed(reason="no Authorization header")
        if len(header) > MAX_AUTHORIZATION_BYTES:
            raise PayloadError(reason="Authorization header over the size cap")
        scheme = header.partition(" ")[0].lower()
        for stage in self.transport:
            if stage.scheme == scheme:
                return stage, stage.verify(request)
        raise AuthenticationFailed(reason=f"Authorization scheme {scheme[:20]!r} not accepted here")
