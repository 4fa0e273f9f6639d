"""The `vidmorph` command: serve, token create, account unsuspend, generate."""

from __future__ import annotations

import logging
import mimetypes
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from vidmorph.config import Settings

if TYPE_CHECKING:
    from vidmorph.service.context import AppContext

app = typer.Typer(help="Vidmorph: self-hosted video-to-video generation.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
account_app = typer.Typer(help="Account administration.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(account_app, name="account")
console = Console()
TOKEN_FILE = "api-token"


def _save_token(settings: Settings, token: str) -> None:
    """Written whole or not at all, readable only by its owner from the first byte."""
    path = settings.data_dir / TOKEN_FILE
    tmp = path.with_name(f".{TOKEN_FILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    os.replace(tmp, path)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (VIDMORPH_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (VIDMORPH_PORT).")] = None,
    processes: Annotated[
        int, typer.Option(min=1, max=64, help="HTTP processes sharing the port.")
    ] = 1,
) -> None:
    """Run the HTTP API. Alone it is the embedded default (SQLite, local files, in-process
    workers); with VIDMORPH_BROKER_URL it sends tasks to `vidmorph worker`s instead."""
    import uvicorn

    from vidmorph.api.server import freeze_heap, uvicorn_options
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
        app = create_app(services)
        freeze_heap()
        uvicorn.run(app, **options)
        return
    ctx = build_context(settings)  # migrates once, before the processes start
    _announce(settings, ctx)
    ctx.db.close()
    uvicorn.run("vidmorph.api.app:app_from_environment", factory=True, workers=processes, **options)


def _announce(settings: Settings, ctx: AppContext) -> None:
    from vidmorph.service.accounts import ensure_default_setup

    user, token = ensure_default_setup(ctx)
    if token:
        _save_token(settings, token)
    else:
        saved = settings.data_dir / TOKEN_FILE
        token = saved.read_text().strip() if saved.exists() else "<your token>"
    _banner(settings, token, user.webhook_secret)


@app.command()
def worker(
    engine: Annotated[
        str | None, typer.Option(help="Engine to load and serve (default VIDMORPH_ENGINE).")
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Tasks run at once (threads sharing the engine).")
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
    processes: Annotated[int, typer.Option(min=1, max=64, help="HTTP processes.")] = 2,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Celery worker processes.")] = 2,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Threads per worker.")] = 1,
    engine: Annotated[str | None, typer.Option(help="Engine the workers load.")] = None,
    database_url: Annotated[
        str, typer.Option(help="PostgreSQL (created if missing).")
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432/vidmorph",
    broker_url: Annotated[str, typer.Option(help="Celery broker.")] = "redis://127.0.0.1:6379/0",
    local_s3: Annotated[
        int | None,
        typer.Option(help="Also start a local S3 endpoint (moto, in memory) on this port."),
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


def _banner(settings: Settings, token: str, webhook_secret: str) -> None:
    base = f"{settings.public_url}/v1/runwayml"
    console.print(f"[bold]Vidmorph[/] on {settings.public_url}  engine={settings.engine}")
    console.print(f"API token:       {token}")
    console.print(f"Webhook secret:  {webhook_secret}")
    console.print("Try it:")
    console.print(
        f'  curl -H "Authorization: Bearer {token}" -H "Content-Type: video/mp4" '
        f'--data-binary @input.mp4 "{base}/assets/?name=input"',
        soft_wrap=True,
    )
    console.print(
        f'  curl -H "Authorization: Bearer {token}" -H "Content-Type: application/json" '
        f"-X POST {base}/gen3/video "
        '-d \'{"assetId": "<assetId>", "text_prompt": "the same street, at night in the rain"}\'',
        soft_wrap=True,
    )


@token_app.command("create")
def token_create(
    user: Annotated[
        int | None, typer.Option(help="Existing user number; omit for a new user.")
    ] = None,
) -> None:
    """Make an API token (for a new user unless --user is given) and print it once."""
    from vidmorph.container import build_context
    from vidmorph.service.accounts import create_token

    ctx = build_context(Settings())
    made_for, token = create_token(ctx, user)
    console.print(f"user {made_for.id}")
    console.print(f"token: {token}")
    console.print(f"webhook secret: {made_for.webhook_secret}")
    ctx.db.close()


@account_app.command("unsuspend")
def account_unsuspend(
    email: str, user: Annotated[int, typer.Option(help="The account's user number.")] = 1
) -> None:
    """Lift a moderation suspension."""
    from vidmorph.container import build_context

    ctx = build_context(Settings())
    if not ctx.accounts.set_suspended(user, email, False):
        console.print(f"no account {email} for user {user}")
        raise typer.Exit(1)
    console.print(f"{email} is active again")


@app.command()
def generate(
    input: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Input video.")],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="What the new video shows.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the MP4.")],
    seconds: Annotated[int | None, typer.Option(min=1, max=60)] = None,
    structure: Annotated[float, typer.Option(min=0, max=10, help="0 keeps, 10 departs.")] = 3,
    seed: Annotated[int | None, typer.Option(min=1, max=4294967294)] = None,
    url: Annotated[str | None, typer.Option(help="Server base URL.")] = None,
    token: Annotated[str | None, typer.Option(help="API token.")] = None,
) -> None:
    """Upload INPUT to a running server, follow the task with a progress bar, download it."""
    settings = Settings()
    base = (url or settings.public_url).rstrip("/") + "/v1/runwayml"
    token = token or settings.api_token or _read_saved_token(settings)
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
        asset_id = _upload(client, base, input)
        body: dict[str, Any] = {
            "assetId": asset_id,
            "text_prompt": prompt,
            "structure_transformation": structure,
        }
        if seconds is not None:
            body["seconds"] = seconds
        if seed is not None:
            body["seed"] = seed
        task = _call(client.post(f"{base}/gen3/video", json=body))
        task = _follow(client, base, task)
        if task["status"] != "SUCCEEDED":
            console.print(f"[red]{task['status']}[/]: {task.get('error')}")
            raise typer.Exit(1)
        with client.stream("GET", task["artifacts"][0]["url"]) as resp:
            resp.raise_for_status()
            with output.open("wb") as out:
                for chunk in resp.iter_bytes():
                    out.write(chunk)
    console.print(f"wrote {output} (seed {task['options']['seed']})")


def _read_saved_token(settings: Settings) -> str:
    path = settings.data_dir / TOKEN_FILE
    if not path.exists():
        console.print("[red]No token: pass --token or set VIDMORPH_API_TOKEN.[/]")
        raise typer.Exit(2)
    return path.read_text().strip()


def _call(resp: httpx.Response) -> Any:
    if resp.status_code >= 400:
        console.print(f"[red]HTTP {resp.status_code}[/]: {resp.text}")
        raise typer.Exit(1)
    return resp.json()


def _upload(client: httpx.Client, base: str, path: Path) -> str:
    ctype = mimetypes.guess_type(path.name)[0] or "video/mp4"
    with path.open("rb") as body:
        resp = client.post(
            f"{base}/assets/",
            params={"name": path.stem},
            content=body,
            headers={"Content-Type": ctype},
        )
    asset: dict[str, Any] = _call(resp)
    return str(asset["assetId"])


def _follow(client: httpx.Client, base: str, task: dict[str, Any]) -> dict[str, Any]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        row = bar.add_task(task["status"], total=1.0)
        while task["status"] in ("PENDING", "RUNNING", "THROTTLED"):
            time.sleep(0.5)
            task = _call(client.get(f"{base}/tasks/{task['taskId']}"))
            ratio = float(task["progressRatio"] or 0)
            bar.update(row, completed=ratio, description=task["progressText"] or task["status"])
        bar.update(row, completed=1.0, description=task["status"])
    return task
