"""APS routes (aps.md §4): app, tenants, users, custom operations and events. Thin handlers.

Order on every route (aps.md §2.4): transport signature and nonce (401) -> APS headers (400) -> key bound
to APS-Instance-ID (401) and APS-Controller-URI equal to the pinned one (400) -> body (400) -> service.
Errors are the APS error body {"code", "error", "message"}.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ParamSpec

from endpoint.aps import instances, tenants, users
from endpoint.aps.context import ApsContext, Outcome
from endpoint.aps.headers import NAMES, TRANSACTION_ID, ApsHeaders, is_uuid, parse_aps_headers, transaction_id
from endpoint.aps.operations import tenant_payload
from endpoint.aps.payloads import (
    parse_app,
    parse_event,
    parse_tenant,
    parse_tenant_update,
    parse_user,
    parse_user_update,
    parse_version,
)
from endpoint.aps.service import ApsService
from endpoint.auth.identity import VerifiedConsumer
from endpoint.errors import NotFound, error_name
from endpoint.web.base import BaseHandler

P = ParamSpec("P")


class ApsHandler(BaseHandler):
    """Shared APS plumbing: the transaction id on the log line, the pipeline, answers and errors."""

    route_label = "aps"

    @property
    def aps(self) -> ApsService:
        return self.runtime.aps

    def prepare(self) -> None:
        # Before anything can fail, so even a rejected request's log line carries the transaction.
        self.log_fields["transaction"] = transaction_id(self.request.headers.get_list(TRANSACTION_ID))
        super().prepare()

    @property
    def verified(self) -> VerifiedConsumer:
        """The transport principal prepare() verified (every APS route declares a transport stage)."""
        assert self.consumer is not None
        return self.consumer

    def aps_headers(self) -> ApsHeaders:
        """The APS headers, their instance id on the log line.

        :raise PayloadError: missing, repeated or malformed APS headers (400).
        """
        values = {name: self.request.headers.get_list(name) for name in NAMES}
        headers = parse_aps_headers(values, self.runtime.settings.aps)
        self.log_fields["instance"] = headers.instance_id
        return headers

    async def context(self, *, allow_removed: bool = False) -> ApsContext:
        """The nonce and the instance binding in one unit of work. :raise ServiceError: (400/401/404)."""
        headers = self.aps_headers()
        return await self.unit(instances.authorize, self.verified, headers, allow_removed=allow_removed)

    async def scheduling(self, fn: Callable[P, Outcome], *args: P.args, **kwargs: P.kwargs) -> Outcome:
        """``fn`` as a unit of work that may schedule a job (a usage sync), then the job runner woken."""
        outcome = await self.unit(fn, *args, **kwargs)
        self.aps.runner.wake()
        return outcome

    def body_bytes(self) -> bytes:
        """The raw body once its media type is JSON (an empty body needs none)."""
        body = self.take_body()
        if body.strip():
            self.require_json_content_type()
        return body

    def resource_id(self, value: str) -> str:
        """:raise NotFound: APS ids are UUIDs; anything else names no resource of ours."""
        if not is_uuid(value):
            raise NotFound(reason="resource id is not a UUID")
        return value.lower()

    def answer(self, outcome: Outcome) -> None:
        self.set_status(outcome.status)
        for name, value in outcome.headers.items():
            self.set_header(name, value)
        if outcome.body is None:
            self.finish()
            return
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(outcome.body)

    def error_body(self, status_code: int, message: str) -> dict[str, Any]:
        return {"code": status_code, "error": error_name(status_code), "message": message}


class AppsHandler(ApsHandler):
    """POST /app: instance creation. The key becomes bound to APS-Instance-ID, the controller URI pinned."""

    async def post(self) -> None:
        headers = self.aps_headers()
        app = parse_app(self.body_bytes())
        partner = self.aps.settings.partner_id
        _, outcome = await self.unit(instances.create_instance, self.verified, headers, app, partner)
        self.answer(outcome)


class AppHandler(ApsHandler):
    """GET/PUT/DELETE /app/{id}."""

    async def get(self, app_id: str) -> None:
        ctx = await self.context()
        self.answer(await self.unit(instances.get_instance, ctx, self.resource_id(app_id)))

    async def put(self, app_id: str) -> None:
        ctx = await self.context()
        app = parse_app(self.body_bytes(), update=True)
        self.answer(await self.unit(instances.configure_instance, ctx, self.resource_id(app_id), app))

    async def delete(self, app_id: str) -> None:
        ctx = await self.context(allow_removed=True)
        self.answer(await self.unit(instances.remove_instance, ctx, self.resource_id(app_id)))


class UpgradeHandler(ApsHandler):
    """POST /app/{id}/upgrade?version=<the version upgraded from>: recorded on the instance; 204."""

    async def post(self, app_id: str) -> None:
        ctx = await self.context()
        version = parse_version(self.request.query_arguments.get("version", []))
        self.answer(await self.unit(instances.upgrade_instance, ctx, self.resource_id(app_id), version))


class ConnectionTestHandler(ApsHandler):
    """POST /app/{id}/testConnection: proxy reachable, controller readable, Acronis token obtainable."""

    async def post(self, app_id: str) -> None:
        ctx = await self.context()
        self.answer(await self.aps.test_connection(ctx, self.resource_id(app_id)))


class TenantsHandler(ApsHandler):
    """POST /tenants: provision (sync, or 202 and a durable job)."""

    async def post(self) -> None:
        ctx = await self.context()
        tenant = parse_tenant(self.body_bytes())
        self.log_fields["resource"] = tenant.aps_id
        outcome = await self.aps.tenant_job(ctx, "tenants.provision", tenant.aps_id, tenant_payload(tenant))
        self.answer(outcome)


class TenantHandler(ApsHandler):
    """GET (with usage) / PUT (name, limits) / DELETE (unprovision) /tenants/{id}."""

    async def get(self, aps_id: str) -> None:
        ctx = await self.context()
        self.answer(await self.unit(tenants.get, ctx.instance_id, self.resource_id(aps_id)))

    async def put(self, aps_id: str) -> None:
        ctx = await self.context()
        change = dataclasses.asdict(parse_tenant_update(self.body_bytes()))
        self.answer(await self.aps.tenant_job(ctx, "tenants.configure", self.resource_id(aps_id), change))

    async def delete(self, aps_id: str) -> None:
        ctx = await self.context()
        self.answer(await self.aps.tenant_job(ctx, "tenants.unprovision", self.resource_id(aps_id), {}))


class TenantSwitchHandler(ApsHandler):
    """POST /tenants/{id}/disable and /enable."""

    async def post(self, aps_id: str, action: str) -> None:
        ctx = await self.context()
        self.answer(await self.aps.tenant_job(ctx, f"tenants.{action}", self.resource_id(aps_id), {}))


class UsersHandler(ApsHandler):
    """POST /users: a user of a provisioned tenant."""

    async def post(self) -> None:
        ctx = await self.context()
        spec = parse_user(self.body_bytes())
        self.log_fields["resource"] = spec.aps_id
        self.answer(await self.scheduling(users.create, ctx, spec))


class UserHandler(ApsHandler):
    """GET/PUT/DELETE /users/{id}."""

    async def get(self, aps_id: str) -> None:
        ctx = await self.context()
        self.answer(await self.unit(users.get, ctx, self.resource_id(aps_id)))

    async def put(self, aps_id: str) -> None:
        ctx = await self.context()
        change = parse_user_update(self.body_bytes())
        self.answer(await self.unit(users.update, ctx, self.resource_id(aps_id), change))

    async def delete(self, aps_id: str) -> None:
        ctx = await self.context()
        self.answer(await self.scheduling(users.delete, ctx, self.resource_id(aps_id)))


class EventHandler(ApsHandler):
    """POST /{service}/{id}/on<Event>: notifications; onUsersChange on tenants, any other one is 204."""

    async def post(self, service: str, aps_id: str, handler: str) -> None:
        ctx = await self.context()
        event = parse_event(self.body_bytes())
        self.answer(await self.aps.event(ctx, service, self.resource_id(aps_id), handler, event))


class UnknownOperationHandler(ApsHandler):
    """Any other /{service}/{id}/{operation}: verified like the rest, then an APS 404 (not tornado's page)."""

    async def _refuse(self, *args: str) -> None:
        await self.context()
        raise NotFound("No such operation.", reason="unknown custom operation")

    get = post = put = delete = _refuse


def aps_routes(mount: str, deps: dict[str, Any]) -> list[tuple[str, type[ApsHandler], dict[str, Any]]]:
    """The APS URL table below ``mount`` (specific routes before the generic event route)."""
    rid = r"([^/]+)"
    return [
        (mount + "app", AppsHandler, deps),
        (mount + f"app/{rid}/testConnection", ConnectionTestHandler, deps),
        (mount + f"app/{rid}/upgrade", UpgradeHandler, deps),
        (mount + f"app/{rid}", AppHandler, deps),
        (mount + "tenants", TenantsHandler, deps),
        (mount + f"tenants/{rid}/(disable|enable)", TenantSwitchHandler, deps),
        (mount + f"tenants/{rid}", TenantHandler, deps),
        (mount + "users", UsersHandler, deps),
        (mount + f"users/{rid}", UserHandler, deps),
        (mount + f"(app|tenants|users)/{rid}/(on[A-Za-z][A-Za-z0-9_]{{0,63}})", EventHandler, deps),
        (mount + f"(?:app|tenants|users)/{rid}/[^/]+", UnknownOperationHandler, deps),
    ]
