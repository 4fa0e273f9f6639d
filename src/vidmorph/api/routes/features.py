"""/features: the account's plan, credits and limits (useapi §10), and /healthz."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from vidmorph.api.deps import CtxDep, UserDep
from vidmorph.api.openapi import doc
from vidmorph.service import accounts
from vidmorph.service.views import features_view

router = APIRouter()


@router.get("/features/", **doc(404, ok="Features"))
@router.get("/features", include_in_schema=False)
def features(ctx: CtxDep, user: UserDep, email: str | None = None) -> Any:
    return JSONResponse(features_view(ctx, accounts.resolve_account(ctx, user, email)))
