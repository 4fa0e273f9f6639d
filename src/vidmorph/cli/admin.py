"""The operator's commands, run on a machine with the service's settings (its database):
`token create|revoke`, `account set|unsuspend`, `webhook-secret`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from vidmorph.config import Settings

if TYPE_CHECKING:
    from vidmorph.service.context import AppContext

token_app = typer.Typer(help="API tokens.", no_args_is_help=True, rich_markup_mode=None)
account_app = typer.Typer(
    help="Account administration.", no_args_is_help=True, rich_markup_mode=None
)
console = Console(highlight=False)


@contextmanager
def _service() -> Iterator[AppContext]:
    """The service's stores on this machine's settings, closed afterwards."""
    from vidmorph.container import build_context

    ctx = build_context(Settings())
    try:
        yield ctx
    finally:
        ctx.db.close()


def webhook_secret(
    user: Annotated[int, typer.Option(metavar="N", help="The user number.")] = 1,
) -> None:
    """Print a user's webhook signing secret (callbacks carry its Standard Webhooks signature)."""
    with _service() as ctx:
        found = ctx.users.get(user)
    if found is None:
        console.print(f"no user {user}")
        raise typer.Exit(1)
    console.print(found.webhook_secret)


@token_app.command("create")
def token_create(
    user: Annotated[
        int | None,
        typer.Option(metavar="N", help="Existing user number; omit for a new user."),
    ] = None,
) -> None:
    """Make an API token (for a new user unless --user is given) and print it once."""
    from vidmorph.service.accounts import create_token

    with _service() as ctx:
        if user is not None and ctx.users.get(user) is None:
            console.print(f"no user {user} (omit --user to make a new one)")
            raise typer.Exit(1)
        made_for, token = create_token(ctx, user)
    console.print(f"user {made_for.id}")
    console.print(f"token: {token}")
    console.print(f"webhook secret: {made_for.webhook_secret}")


@token_app.command("revoke")
def token_revoke(token: Annotated[str, typer.Argument(metavar="TOKEN")]) -> None:
    """Stop a token from working (servers that checked it lately trust it for 30 s more)."""
    with _service() as ctx:
        revoked = ctx.users.revoke_token(token.strip())
    if revoked is None:
        console.print("no such token")
        raise typer.Exit(1)
    console.print(f"revoked a token of user {revoked}")


@account_app.command("unsuspend")
def account_unsuspend(
    email: Annotated[str, typer.Argument(metavar="EMAIL")],
    user: Annotated[int, typer.Option(metavar="N", help="The account's user number.")] = 1,
) -> None:
    """Lift a moderation suspension."""
    with _service() as ctx:
        lifted = ctx.accounts.set_suspended(user, email, False)
    if not lifted:
        console.print(f"no account {email} for user {user}")
        raise typer.Exit(1)
    console.print(f"{email} is active again")


@account_app.command("set")
def account_set(
    email: Annotated[str, typer.Argument(metavar="EMAIL")],
    user: Annotated[int, typer.Option(metavar="N", help="The account's user number.")] = 1,
    plan: Annotated[
        str | None, typer.Option(metavar="standard|unlimited", help="The account's plan.")
    ] = None,
    credits: Annotated[
        int | None,
        typer.Option(min=0, max=2**31 - 1, metavar="N", help="Its plan's credit allowance."),
    ] = None,
    max_jobs: Annotated[
        int | None, typer.Option(min=1, max=10, metavar="N", help="Tasks it runs at once.")
    ] = None,
) -> None:
    """Set an account's plan, credits or maxJobs (tenants may not change plan or credits
    through the API unless VIDMORPH_SELF_SERVICE_PLANS)."""
    if plan is not None and plan not in ("standard", "unlimited"):
        console.print("--plan is standard or unlimited")
        raise typer.Exit(2)
    values: dict[str, Any] = {"plan": plan, "num_plan_credits": credits, "max_jobs": max_jobs}
    with _service() as ctx:
        if ctx.accounts.get(user, email) is None:
            console.print(f"no account {email} for user {user}")
            raise typer.Exit(1)
        given = {k: v for k, v in values.items() if v is not None}
        account = ctx.accounts.upsert(user, email, by_tenant=False, **given)
    console.print(
        f"{email}: plan {account.plan}, {account.num_plan_credits} credits "
        f"({account.credits_used} used), maxJobs {account.max_jobs}"
    )
