"""make_app(settings, runtime) -> tornado Application: the URL table and application settings only;
make_delegate(settings, runtime): what the server runs, the application with /callback taken first."""

from __future__ import annotations

import tornado.web
from tornado.httputil import HTTPServerConnectionDelegate

from endpoint.config.settings import Settings
from endpoint.runtime import Runtime
from endpoint.web.aps import aps_routes
from endpoint.web.callback import CallbackExchange
from endpoint.web.health import NotFoundHandler, PublicHealthHandler
from endpoint.web.requestlog import log_request
from endpoint.web.routing import HotPaths, Route


def make_delegate(settings: Settings, runtime: Runtime) -> HTTPServerConnectionDelegate:
    """The application, with the busiest path answered before its router (endpoint/web/exchange.py)."""
    callback = Route(runtime, runtime.callback_stages, CallbackExchange)
    app = make_app(settings, runtime, callback)
    return HotPaths(app, {settings.endpoint.mount_path + "callback": callback})


def make_app(settings: Settings, runtime: Runtime, callback: Route | None = None) -> tornado.web.Application:
    """Routes live below ``endpoint.mount_path``; nothing here listens or touches the network."""
    mount = settings.endpoint.mount_path
    callback = callback or Route(runtime, runtime.callback_stages, CallbackExchange)
    plain = {"runtime": runtime}
    # Each route names what it verifies: the callback its transport and the end user, APS the transport.
    # /callback is a lean exchange (endpoint/web/exchange.py); the others are RequestHandlers.
    aps = {"runtime": runtime, "stages": runtime.aps_stages}
    routes = [
        (mount + "callback", callback),
        (mount + "healthz", PublicHealthHandler, plain),
        *aps_routes(mount, aps),
    ]
    return tornado.web.Application(
        routes,
        log_function=log_request,
        # Server-to-server JSON: no cookies, no XSRF tokens, no templates, no debug tracebacks.
        xsrf_cookies=False,
        serve_traceback=False,
        debug=False,
        compress_response=False,
        default_handler_class=NotFoundHandler,
        default_handler_args=plain,
    )
