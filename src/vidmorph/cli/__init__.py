"""The `vidmorph` command: serve, worker, fleet, workers, token, account, webhook-secret, and
the client commands of `cli/client.py` (generate, sample)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from vidmorph import __version__
from vidmorph.cli import admin, client, credentials
from vidmorph.config import Settings

if TYPE_CHECKING:
    from vidmorph.service.context import AppContext

# Plain help (click's): typer's rich help labels every option `<int range>`, `<bool>`.
app = typer.Typer(
    help="Vidmorph: self-hosted video-to-video generation.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(admin.token_app, name="token")
app.add_typer(admin.account_app, name="account")
app.command("webhook-secret")(admin.webhook_secret)
app.command()(client.generate)
app.command()(client.sample)
console = Console(highlight=False)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(metavar="ADDRESS", help="Address to bind [VIDMORPH_HOST].")
    ] = None,
    port: Annotated[
        int | None, typer.Option(metavar="PORT", help="Port to bind [VIDMORPH_PORT].")
    ] = None,
    processes: Annotated[
        int, typer.Option(min=1, max=64, metavar="N", help="HTTP processes sharing the port.")
    ] = 1,
) -> None:
    """Run the HTTP API. Alone it is the embedded default (SQLite, local files, in-process
    workers); with VIDMORPH_BROKER_URL it sends tasks to `vidmorph worker`s instead."""
    import uvicorn

    from vidmorph.api.server import uvicorn_options
    from vidmorph.container import build_context

    _logging()
    # Children of --processes read their settings from the environment, as this one does.
    if host is not None:
        os.environ["VIDMORPH_HOST"] = host
    if port is not None:
        os.environ["VIDMORPH_PORT"] = str(port)
    settings = Settings()
    options = uvicorn_options(settings)
    if processes == 1:
        from vidmorph.api.app import create_app
        from vidmorph.container import build_services

        services = build_services(settings)
        _announce(settings, services.ctx)
        uvicorn.run(create_app(services, freeze=True), **options)
        return
    ctx = build_context(settings)  # migrates once, before the processes start
    _announce(settings, ctx)
    ctx.db.close()
    uvicorn.run("vidmorph.api.app:app_from_environment", factory=True, workers=processes, **options)


def _announce(settings: Settings, ctx: AppContext) -> None:
    from vidmorph.service.accounts import ensure_default_setup

    user, token = ensure_default_setup(ctx)
    token = token or credentials.saved_token(settings)
    if token is None:  # made by an earlier start whose file was since removed
        console.print("API token: kept nowhere; make one with `vidmorph token create --user 1`")
        return
    saved = credentials.remember(settings, token)
    _banner(settings, token, user.webhook_secret, saved)


@app.command()
def worker(
    engine: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Engine to load and serve [VIDMORPH_ENGINE]."),
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option(
            min=1, max=64, metavar="N", help="Tasks run at once (threads sharing the engine)."
        ),
    ] = 1,
) -> None:
    """Run a Celery worker: load ENGINE once and take its tasks from VIDMORPH_BROKER_URL."""
    from vidmorph.container import build_context
    from vidmorph.workers.celery_app import run_worker

    _logging()
    settings = Settings()
    if not settings.broker_url:
        console.print(
            "[red]vidmorph worker needs VIDMORPH_BROKER_URL (redis://... or amqp://...).[/]"
        )
        raise typer.Exit(2)
    ctx = build_context(settings)
    name = engine or settings.engine
    try:
        ctx.engine(name)  # loaded once, before taking work
    except Exception as exc:
        console.print(f"[red]engine {name!r} did not load: {exc}[/]")
        raise typer.Exit(1) from None
    run_worker(ctx, name, concurrency)


@app.command()
def fleet(
    processes: Annotated[int, typer.Option(min=1, max=64, metavar="N", help="HTTP processes.")] = 2,
    workers: Annotated[
        int, typer.Option(min=1, max=64, metavar="N", help="Celery worker processes.")
    ] = 2,
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, metavar="N", help="Threads per worker.")
    ] = 1,
    engine: Annotated[
        str | None, typer.Option(metavar="NAME", help="Engine the workers load.")
    ] = None,
    database_url: Annotated[
        str, typer.Option(metavar="URL", help="PostgreSQL (created if missing).")
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432/vidmorph",
    broker_url: Annotated[
        str, typer.Option(metavar="URL", help="Celery broker.")
    ] = "redis://127.0.0.1:6379/0",
    local_s3: Annotated[
        int | None,
        typer.Option(
            metavar="PORT", help="Also start a local S3 endpoint (moto, in memory) on this port."
        ),
    ] = None,
) -> None:
    """Run a whole fleet on this machine: N HTTP processes, M workers, optionally local S3."""
    from vidmorph.launcher import FleetPlan, run

    _logging()
    settings = Settings()
    plan = FleetPlan(
        database_url=database_url,
        broker_url=broker_url,
        processes=processes,
        workers=workers,
        worker_concurrency=concurrency,
        engine=engine or settings.engine,
        local_s3_port=local_s3,
    )
    raise typer.Exit(run(plan))


@app.command("workers")
def list_workers() -> None:
    """List the workers reporting in: engine, device, memory, what they run."""
    from vidmorph.container import build_context
    from vidmorph.service import fleet

    ctx = build_context(Settings())
    for w in fleet.live_workers(ctx, max_age_s=0):
        free = f"{w.memory_free_bytes / 2**30:.1f} GiB free" if w.memory_free_bytes else "-"
        running = ", ".join(w.running) or "idle"
        console.print(
            f"{w.id}  {w.kind}  engine={w.engine}  device={w.device}  x{w.concurrency}  "
            f"{free}  {running}",
            soft_wrap=True,
        )
    ctx.db.close()


#: a JSON field from stdin, in a shell pipeline (python3 is there wherever the server runs)
_PICK = "python3 -c 'import json,sys; print(json.load(sys.stdin){})'"


def _command() -> str:
    """This `vidmorph` as one would type it here: relative inside this folder (.venv/bin/...)."""
    exe = Path(sys.executable).with_name("vidmorph")
    if not exe.exists():
        return "vidmorph"
    try:
        return str(exe.relative_to(Path.cwd()))
    except ValueError:
        return str(exe)


def _banner(settings: Settings, token: str, webhook_secret: str, saved: list[Path]) -> None:
    url = settings.public_url
    me = _command()
    auth = '-H "Authorization: Bearer $TOKEN"'
    asset_id, task_id = _PICK.format('["assetId"]'), _PICK.format('["taskId"]')
    output_url = _PICK.format('["artifacts"][0]["url"]')
    body = '{\\"assetId\\": \\"$ASSET\\", \\"text_prompt\\": \\"the same street, at night\\"}'
    lines = [
        f"[bold]Vidmorph {__version__}[/] on {url}  engine={settings.engine}",
        f"  Playground:      {url}/   (paste the API token there)",
        f"  API docs:        {url}/docs",
        f"  API token:       {token}",
        f"                   saved in {', '.join(str(p) for p in saved)}",
        f"  Webhook secret:  {webhook_secret}   (`vidmorph webhook-secret` shows it again)",
        "Try it from another shell, in this folder:",
        f"  {me} sample input.mp4      # a 5 s test video, if you have none at hand",
        f'  {me} generate input.mp4 -p "the same street, at night" -o output.mp4',
        "Or with curl:",
        f"  TOKEN={token}; BASE={url}/v1/runwayml",
        f'  ASSET=$(curl -sf {auth} -H "Content-Type: video/mp4" --data-binary @input.mp4 '
        f'"$BASE/assets/?name=input" | {asset_id})',
        f'  TASK=$(curl -sf {auth} -H "Content-Type: application/json" -d "{body}" '
        f'"$BASE/gen3/video" | {task_id})',
        f'  curl -sfN {auth} "$BASE/tasks/$TASK/events"    # live progress, ends when it is done',
        f'  curl -sf {auth} "$BASE/tasks/$TASK" | {output_url} | xargs curl -sf -o output.mp4',
    ]
    for line in lines:
        console.print(line, soft_wrap=True, markup=line.startswith("[bold]"))
