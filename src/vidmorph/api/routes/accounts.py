"""/accounts: the user's capacity pools (maxJobs, plan, credits, default replyUrl)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from vidmorph import errors
from vidmorph.api.deps import CtxDep, UserDep, parse, read_body
from vidmorph.api.openapi import ACCOUNTS_CONTENT, doc
from vidmorph.api.schemas import AccountIn
from vidmorph.service import accounts
from vidmorph.service.views import account_view

router = APIRouter()
#: an account is named by its email address (useapi §2)
EmailPath = Annotated[str, Path(json_schema_extra={"pattern": "@", "maxLength": 320})]


@router.post("/accounts/{email}", **doc(408, 413, ok="Account", body=AccountIn))
async def save_account(email: EmailPath, request: Request, ctx: CtxDep, user: UserDep) -> Any:
    body = parse(AccountIn, await read_body(request))
    if body.email is not None and body.email != email:
        raise errors.BadRequest("email in the body must match the email in the path.")
    # what the body gave, null included (a null replyUrl clears it), not the defaults
    given = body.model_dump(exclude_unset=True)
    account = await run_in_threadpool(accounts.save_account, ctx, user, email, given)
    return JSONResponse(account_view(account))


@router.get("/accounts", **doc(404, ok=ACCOUNTS_CONTENT))
@router.get("/accounts/", include_in_schema=False)
def list_accounts(ctx: CtxDep, user: UserDep) -> Any:
    found = ctx.accounts.all_of(user.id)
    if not found:
        raise errors.NotFound(accounts.NO_CONFIGURATION)
    return JSONResponse({a.email: account_view(a) for a in found})


@router.get("/accounts/{email}", **doc(404, ok="Account"))
def get_account(email: EmailPath, ctx: CtxDep, user: UserDep) -> Any:
    account = ctx.accounts.get(user.id, email)
    if account is None:
        raise errors.NotFound(accounts.NO_CONFIGURATION)
    return JSONResponse(account_view(account))


@router.delete("/accounts/{email}", status_code=204, **doc(404, 409))
def delete_account(email: EmailPath, ctx: CtxDep, user: UserDep) -> Response:
    """Delete the account with its finished tasks, their outputs and its uploads (files and
    links too); 409 while tasks of it are pending or running."""
    accounts.delete_account(ctx, user, email)
    return Response(status_code=204)
