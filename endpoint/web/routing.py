"""How requests reach a lean exchange (endpoint/web/exchange.py): a ``Route`` makes one exchange per request,
and ``HotPaths`` hands the busiest exact paths to their route before the application's router runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tornado.httputil import (
    HTTPConnection,
    HTTPHeaders,
    HTTPMessageDelegate,
    HTTPServerConnectionDelegate,
    RequestStartLine,
    ResponseStartLine,
)

from endpoint.auth.stages import Stages
from endpoint.runtime import Runtime

if TYPE_CHECKING:
    from endpoint.web.exchange import Exchange


class Route(HTTPServerConnectionDelegate):
    """A rule target of the Tornado application: one ``exchange`` per request on this route."""

    def __init__(self, runtime: Runtime, stages: Stages, exchange: type[Exchange]) -> None:
        self.runtime = runtime
        self.stages = stages
        self.exchange = exchange

    def start_request(self, server_conn: object, request_conn: HTTPConnection) -> HTTPMessageDelegate:
        return self.exchange(self, request_conn)


class HotPaths(HTTPServerConnectionDelegate):
    """The application, with exact paths of lean routes answered without its router: Tornado's router
    builds an HTTPServerRequest and matches the rules for every request (~2 % of a callback's CPU)."""

    def __init__(self, application: HTTPServerConnectionDelegate, routes: dict[str, Route]) -> None:
        self.application = application
        self.routes = routes

    def start_request(self, server_conn: object, request_conn: HTTPConnection) -> HTTPMessageDelegate:
        return _PathSwitch(self, server_conn, request_conn)

    def on_close(self, server_conn: object) -> None:
        self.application.on_close(server_conn)


class _PathSwitch(HTTPMessageDelegate):
    """Picks the delegate of one request once its start line is known."""

    __slots__ = ("_paths", "_server_conn", "_request_conn", "_delegate")

    def __init__(self, paths: HotPaths, server_conn: object, request_conn: HTTPConnection) -> None:
        self._paths, self._server_conn, self._request_conn = paths, server_conn, request_conn
        self._delegate: HTTPMessageDelegate | None = None

    def headers_received(self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders) -> Any:
        assert isinstance(start_line, RequestStartLine)
        route = self._paths.routes.get(start_line.path.partition("?")[0])
        owner = route if route is not None else self._paths.application
        self._delegate = owner.start_request(self._server_conn, self._request_conn)
        return self._delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        assert self._delegate is not None
        return self._delegate.data_received(chunk)

    def finish(self) -> None:
        assert self._delegate is not None
        self._delegate.finish()

    def on_connection_close(self) -> None:
        if self._delegate is not None:
            self._delegate.on_connection_close()
