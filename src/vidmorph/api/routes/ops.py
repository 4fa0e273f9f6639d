"""Operations: /readyz (503 while a dependency is unreachable) and Prometheus /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

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
    registry = request.app.state.metrics
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
