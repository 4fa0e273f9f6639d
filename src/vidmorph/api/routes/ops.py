"""Operations: /readyz (503 while a dependency is unreachable) and Prometheus /metrics."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from vidmorph import errors
from vidmorph.api.deps import CtxDep
from vidmorph.service import telemetry

router = APIRouter(include_in_schema=False)


@router.get("/readyz")
async def readyz(ctx: CtxDep) -> Any:
    report = await run_in_threadpool(telemetry.readiness, ctx)
    down = sorted(name for name, state in report.items() if state != "ok")
    if down:
        message = "Not ready: " + "; ".join(f"{name} {report[name]}" for name in down)
        return JSONResponse(
            {"error": message, "checks": report, "code": 503},
            503,
            headers={"Retry-After": "5"},
        )
    return {"status": "ready", "checks": report}


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus's figures; with VIDMORPH_METRICS_TOKEN, only for `Bearer <that token>`
    (they count every tenant's work, and each scrape runs grouped counts over the tasks)."""
    wanted = request.app.state.ctx.settings.metrics_token
    if wanted:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), wanted):
            raise errors.Unauthorized()
    registry = request.app.state.metrics
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
