"""make_app: the URL table below mount_path and the application settings, nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import peewee as pw
import pytest
import requests
import tornado.web

from endpoint.runtime import InFlight, Runtime
from endpoint.web.app import make_app, make_delegate
from endpoint.web.requestlog import log_request
from endpoint.web.routing import HotPaths
from models.db import DatabaseSettings
from tests.support.builders import PUBLIC_URL, create_consumer, make_settings, sign
from tests.support.live_endpoint import LiveEndpoint, live_endpoint


@pytest.fixture
def mounted(database: pw.Database, db_settings: DatabaseSettings) -> Iterator[LiveEndpoint]:
    create_consumer()
    settings = make_settings(database=db_settings, endpoint={"mount_path": "/connector/"})
    with live_endpoint(settings) as live:
        yield live


def get(live: LiveEndpoint, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(live.base_url + path, timeout=5, **kwargs)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/connector/healthz", 200),
        ("/connector/callback", 405),  # routed: only POST is defined
        ("/healthz", 404),
        ("/callback", 404),
        ("/connector", 404),
        ("/connector/callback/extra", 404),
    ],
)
def test_routes_live_below_the_mount_path(mounted: LiveEndpoint, path: str, status: int) -> None:
    assert get(mounted, path).status_code == status


def test_a_signed_callback_reaches_the_handler_below_the_mount(mounted: LiveEndpoint) -> None:
    # The controller signs the public URL; the proxy forwards it below /connector/.
    headers = sign("POST", PUBLIC_URL + "callback")
    response = requests.post(mounted.base_url + "/connector/callback", data=b"{}", headers=headers, timeout=5)
    assert response.status_code == 400  # the signature verified; the empty envelope did not
    bare = requests.post(mounted.base_url + "/callback", data=b"{}", headers=headers, timeout=5)
    assert bare.status_code == 404


@pytest.mark.parametrize("path", ["/connector/nope", "/connector/../etc/passwd", "/%ff"])
def test_unknown_routes_are_404_without_a_traceback(mounted: LiveEndpoint, path: str) -> None:
    response = get(mounted, path)
    assert response.status_code in (400, 404)
    assert "Traceback" not in response.text and 'File "' not in response.text


def test_unrouted_paths_get_a_json_404_with_our_headers(mounted: LiveEndpoint) -> None:
    response = get(mounted, "/connector/nope")
    assert response.status_code == 404 and response.json() == {"code": 404, "message": "Not found."}
    assert response.headers["Cache-Control"] == "no-store" and "X-Correlation-Id" in response.headers
    assert "Server" not in response.headers


def test_application_settings() -> None:
    runtime = cast(
        Runtime,
        SimpleNamespace(settings=make_settings(), inflight=InFlight(), callback_stages=None, aps_stages=None),
    )
    app = make_app(make_settings(), runtime)
    assert app.settings["xsrf_cookies"] is False  # server-to-server: no XSRF tokens
    assert app.settings["debug"] is False
    assert app.settings["serve_traceback"] is False
    assert not app.settings.get("autoreload")
    assert app.settings["log_function"] is log_request
    assert not app.settings.get("cookie_secret") and not app.settings.get("template_path")


def test_the_server_takes_the_callback_path_first_and_the_application_holds_the_same_route() -> None:
    settings = make_settings(endpoint={"mount_path": "/connector/"})
    runtime = cast(
        Runtime,
        SimpleNamespace(settings=settings, inflight=InFlight(), callback_stages=None, aps_stages=None),
    )
    delegate = make_delegate(settings, runtime)
    assert isinstance(delegate, HotPaths) and list(delegate.routes) == ["/connector/callback"]
    application = cast(tornado.web.Application, delegate.application)
    [rule] = [
        r for r in application.wildcard_router.rules if r.target is delegate.routes["/connector/callback"]
    ]
    assert rule.matcher.match(SimpleNamespace(path="/connector/callback")) is not None  # type: ignore[arg-type]
