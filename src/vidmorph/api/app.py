"""create_app(services): routers under /v1/runwayml, error mapping, start/stop of workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route

from vidmorph import __version__
from vidmorph.api import errors, openapi
from vidmorph.api.guards import Guards
from vidmorph.api.routes import (
    accounts,
    assets,
    events,
    features,
    gen3,
    ops,
    runway,
    tasks,
    web,
)
from vidmorph.api.server import configure_limits, freeze_heap
from vidmorph.api.slashes import answer_either_slash
from vidmorph.config import Settings
from vidmorph.container import Services, build_services
from vidmorph.service.accounts import Authenticator
from vidmorph.service.telemetry import registry_for

PREFIX = "/v1/runwayml"


def create_app(services: Services, *, manage: bool = True, freeze: bool = False) -> FastAPI:
    """The ASGI app. With `manage`, its lifespan starts and closes the worker threads; with
    `freeze` (a server process, not a test's), it then freezes the heap (server.freeze_heap)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Requests that hop to a thread do database work: no more of them at once than the
        # pool has connections (past it, each would open and close a connection of its own).
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = services.ctx.db.pool_size
        if manage:
            services.start()
        if freeze:  # after start(): the moderation classifier loads there
            freeze_heap()
        try:
            yield
        finally:
            reads = services.ctx.db.async_reads
            if reads is not None:  # its pool lives in this loop: closed here, before the rest
                await reads.aclose()
            if manage:
                services.close()

    # The docs pages are the offline ones of routes/web.py, not FastAPI's CDN-loaded defaults.
    app = FastAPI(
        title="Vidmorph",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = services.ctx
    app.state.auth = Authenticator(services.ctx)
    app.state.metrics = registry_for(services.ctx)
    errors.install(app)
    app.add_middleware(Guards)  # control characters refused, HEAD routed as GET

    # First among the routes: Starlette tries them in order, and load balancers call it most.
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    # The polled route next, as a plain Starlette route: FastAPI's request handling (dependency
    # solving, its exit stacks) costs more than the poll itself. The FastAPI route of the same
    # path, in the tasks router below, documents it and is never reached.
    poll = Route(
        f"{PREFIX}/tasks/{{task_id}}", tasks.get_task, methods=["GET"], include_in_schema=False
    )
    app.router.routes.append(poll)
    # The create routes likewise, right after it (they too take the Request alone): FastAPI's
    # handling and the walk through the included routers before gen3's cost ~20% of a
    # create. Their FastAPI routes, in gen3.router, document them.
    for route in gen3.router.routes:
        assert isinstance(route, APIRoute) and route.methods == {"POST"}, route
        fast = Route(PREFIX + route.path, route.endpoint, methods=["POST"], include_in_schema=False)
        app.router.routes.append(fast)
    # HEAD of a signed file link: its headers alone (FileResponse reads nothing for a HEAD).
    head = Route(
        f"{PREFIX}/files/{{key:path}}",
        assets.download_head,
        methods=["HEAD"],
        include_in_schema=False,
    )
    app.router.routes.append(head)
    app.state.methods = methods = errors.MethodTable()
    methods.add("", [poll, head])  # the poll: GET and, as Starlette adds it, HEAD
    # Routes match in order: the two polls, the paths clients hit most, come first.
    app.include_router(tasks.router, prefix=PREFIX)
    app.include_router(runway.polls, prefix="/v1")  # before DELETE /tasks/{id}: same path
    methods.add(PREFIX, tasks.router.routes)
    for module in (events, gen3, assets, accounts, features):
        app.include_router(module.router, prefix=PREFIX)
        methods.add(PREFIX, module.router.routes)
    app.include_router(runway.router, prefix="/v1")
    app.include_router(runway.forms, prefix="/v1")
    methods.add("/v1", [*runway.polls.routes, *runway.router.routes, *runway.forms.routes])
    app.include_router(ops.router)
    web.install(app)
    openapi.install(app)
    answer_either_slash(app)
    return app


def app_from_environment() -> FastAPI:
    """The app of one `vidmorph serve --processes N` process: settings from the environment,
    services of its own (the parent migrated the schema and made the default set-up)."""
    settings = Settings()
    configure_limits(settings)
    return create_app(build_services(settings), freeze=True)
