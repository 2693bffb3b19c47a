"""Serving a socketserver in a background thread: the start/serve/stop shared by the simulators."""

from __future__ import annotations

import socketserver
import threading
from typing import Self


class BackgroundServer:
    """Owns ``_server``: ``start()`` serves it in a daemon thread, ``serve_forever()`` in the caller."""

    thread_name = "simulator"

    def __init__(self, server: socketserver.BaseServer) -> None:
        self._server = server
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # a quick stop(): shutdown() waits for the next poll
            name=self.thread_name,
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until ``shutdown()``."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def stop(self) -> None:
        """Stop accepting and close the listener; requests already being handled are not waited for."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
