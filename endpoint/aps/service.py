"""ApsService: what APS handlers need beyond one unit of work: job-backed tenant operations, the connection
test, events, and the job runner they wake. A plain read or write is the handler's own unit of work
(``BaseHandler.unit``); database work goes to DatabaseRunner, network to the outbound pool.

No tornado here. Provisioning-type tenant operations follow aps.md §4.2: a durable job is submitted; in the
sync phase it runs at once for up to ``sync_budget`` seconds (or not at all for ``async_operations``) and
the answer is the job's state: 200/201 done, 202 + APS-Retry-Timeout + APS-Info while it continues in the
background, 500 + APS-Transient-Error: false when it failed. Async-phase polls only read the job.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Mapping
from typing import Any

import requests

from endpoint.aps import instances, jobs, tenants, users
from endpoint.aps.context import ApsContext, Outcome
from endpoint.aps.diagnostics import run_connection_test
from endpoint.aps.headers import ASYNC
from endpoint.aps.outbound import Outbound
from endpoint.aps.payloads import EventInput
from endpoint.aps.runner import JobExecutor, JobRunner
from endpoint.config.settings import Settings
from endpoint.work.executors import DatabaseRunner
from models import ApsInstance
from models.aps import RUNNING
from proxy.controller import ControllerClient
from proxy.errors import ConnectorConfigError

log = logging.getLogger(__name__)

USERS_CHANGE = "onUsersChange"
JOB_WATCH_INTERVAL = 0.05  # seconds between looks at a sync job another runner is running


def _controller_credentials(instance_id: str) -> tuple[str, str, str | None]:
    row = ApsInstance.get_by_id(instance_id)
    return row.controller_uri, row.consumer_key, jobs.signing_secret(row)


class ApsService:
    """One per serving process; ``start()`` launches the job runner, ``close()`` stops everything."""

    def __init__(
        self,
        settings: Settings,
        db: DatabaseRunner,
        environ: Mapping[str, str],
        *,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = settings.aps
        self._acronis = settings.acronis
        self.db = db
        self.outbound = Outbound(settings.proxy, settings.aps, environ, session)
        self.executor = JobExecutor(settings.aps, self.outbound)
        self.runner = JobRunner(settings.aps, self.executor, self.outbound)
        self._rng = random.Random()

    def start(self) -> None:
        self.runner.start()

    def close(self) -> None:
        self.runner.stop()
        self.outbound.close()

    # -- instances ------------------------------------------------------------------------------
    async def test_connection(self, ctx: ApsContext, app_id: str) -> Outcome:
        """Proxy, controller and Acronis token checks, run in the outbound pool. :raise NotFound:"""
        await self.db.run(instances.get_instance, ctx, app_id)
        uri, key, secret = await self.db.run(_controller_credentials, ctx.instance_id)

        def controller() -> ControllerClient:
            if secret is None:
                raise ConnectorConfigError("the instance has no active secret")
            return self.outbound.controller(uri, key, secret)

        report = await self._outbound(
            run_connection_test, self.outbound, self._acronis, controller, ctx.app_id, ctx.transaction_id
        )
        log.info("testConnection: ok=%s", report["ok"], extra=ctx.log_extra)
        return Outcome(200, report)

    # -- tenants --------------------------------------------------------------------------------
    async def tenant_job(
        self, ctx: ApsContext, operation: str, aps_id: str, payload: dict[str, Any]
    ) -> Outcome:
        """A job-backed tenant operation (§4.2). :raise ServiceError: a 4xx found while running in sync."""
        aps_id = aps_id.lower()
        decided = await self.db.run(tenants.precheck, ctx.instance_id, operation, aps_id)  # 404/409: no job
        if decided is not None:
            return decided
        if ctx.phase == ASYNC:
            view = await self.db.run(jobs.lookup, ctx.instance_id, aps_id, operation)
            if view is not None:
                return jobs.answer(view, self.settings, self._rng)
            # No job (finished and purged, or never seen): the poll is the request itself, and every
            # operation is idempotent, so running it again reports the real state.
        view = await self.db.run(jobs.submit, ctx.instance_id, aps_id, operation, payload, ctx.transaction_id)
        if not view.fresh or operation in self.settings.async_operations:
            self.runner.wake()
            log.info("%s %s: answered %s (async)", operation, aps_id, view.state, extra=ctx.log_extra)
            return jobs.answer(view, self.settings, self._rng)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.sync_budget
        future = loop.run_in_executor(
            self.outbound.executor, functools.partial(self.executor.run, view.id, raise_domain_errors=True)
        )
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved even after 202
        try:
            finished = await asyncio.wait_for(asyncio.shield(future), self.settings.sync_budget)
            # A job runner (this process's, or another serving process's) claimed the fresh job first:
            # the request still waits for its job, within the same budget, whoever runs it.
            while finished is not None and finished.state == RUNNING and loop.time() < deadline:
                await asyncio.sleep(JOB_WATCH_INTERVAL)
                finished = await self.db.run(jobs.view, view.id)
        except TimeoutError:
            log.info(
                "%s %s: slow; continuing in the background (202)", operation, aps_id, extra=ctx.log_extra
            )
            finished = await self.db.run(jobs.view, view.id)
        return jobs.answer(finished or view, self.settings, self._rng)

    # -- events ---------------------------------------------------------------------------------
    async def event(
        self, ctx: ApsContext, service: str, aps_id: str, handler: str, event: EventInput
    ) -> Outcome:
        """Acknowledge quickly (202 would be redelivered forever, 4xx retried 10 times: aps.md §4)."""
        if service == "tenants" and handler == USERS_CHANGE:
            if await self.db.run(users.users_changed, ctx, aps_id):
                self.runner.wake()
            else:
                log.info("onUsersChange for unknown tenant %s: ignored", aps_id, extra=ctx.log_extra)
            return Outcome(204)
        log.info(
            "event %s on %s/%s (%s): no handler, acknowledged",
            handler,
            service,
            aps_id,
            event.event[:120],
            extra=ctx.log_extra,
        )
        return Outcome(204)

    async def _outbound(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(
            self.outbound.executor, functools.partial(fn, *args)
        )
