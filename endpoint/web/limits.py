"""BodyBudget: caps the request-body bytes one process buffers at once (verified requests only)."""

from __future__ import annotations

from endpoint.errors import Unavailable


class BodyBudget:
    """Bytes reserved by requests whose bodies are being read or held (IOLoop thread only).

    A request reserves its Content-Length (or the body limit when chunked) once it verified and before
    its body is read, and gives it back when it finishes or its connection drops. Slow or numerous
    uploaders can therefore hold at most ``limit`` bytes of this process's memory.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.reserved = 0

    def reserve(self, size: int) -> int:
        """:raise Unavailable: (503) when ``size`` more bytes would pass the limit; returns ``size``."""
        if self.reserved + size > self.limit:
            raise Unavailable(
                "Too many request bodies in flight; retry shortly.",
                reason=f"body budget: {self.reserved} of {self.limit} bytes held, {size} asked",
                retry_after=1,
            )
        self.reserved += size
        return size

    def release(self, size: int) -> None:
        self.reserved -= size
