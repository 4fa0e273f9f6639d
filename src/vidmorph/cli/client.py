"""The client commands: `vidmorph generate` (upload, follow, download) and `vidmorph sample`.

`generate` talks to a running server over its HTTP API like any client would. Whatever goes
wrong (no server, a wrong token, a refused input) is one line saying what and what to do, not
a traceback; the server's own error message is shown as it is.
"""

from __future__ import annotations

import mimetypes
import os
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from vidmorph.cli.credentials import find_token
from vidmorph.config import Settings

console = Console()
err = Console(stderr=True)
_IN_FLIGHT = ("PENDING", "RUNNING", "THROTTLED")


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/] {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(1)


def generate(
    input: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, metavar="INPUT", help="Input video.")
    ],
    prompt: Annotated[
        str, typer.Option("--prompt", "-p", metavar="TEXT", help="What the new video shows.")
    ],
    output: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--output",
            metavar="PATH",
            help="Where to write the MP4, or a folder for it [INPUT-vidmorph.mp4].",
        ),
    ] = None,
    seconds: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="N",
            help="Output length [the input's, up to the server's maxSeconds].",
        ),
    ] = None,
    structure: Annotated[
        float,
        typer.Option(min=0, max=10, metavar="0..10", help="0 keeps the input, 10 departs."),
    ] = 3,
    seed: Annotated[
        int | None, typer.Option(min=1, max=4294967294, metavar="N", help="Same seed, same video.")
    ] = None,
    turbo: Annotated[bool, typer.Option(help="Gen-3 Alpha Turbo (gen3turbo/video).")] = False,
    portrait: Annotated[bool, typer.Option(help="Portrait 768x1280 (with --turbo).")] = False,
    url: Annotated[
        str | None, typer.Option(metavar="URL", help="Server [VIDMORPH_PUBLIC_URL or :8000].")
    ] = None,
    token: Annotated[
        str | None, typer.Option(metavar="TOKEN", help="API token [saved by `vidmorph serve`].")
    ] = None,
    email: Annotated[
        str | None,
        typer.Option(metavar="EMAIL", help="The account to use [the only one there is]."),
    ] = None,
) -> None:
    """Upload INPUT to a running server, follow the task with a progress bar, download it."""
    settings = Settings()
    server = (url or settings.public_url).rstrip("/")
    base = f"{server}/v1/runwayml"
    token = token or find_token(server, settings)
    if not token:
        _fail(
            f"no API token for {server}: pass --token, set VIDMORPH_API_TOKEN, or start the "
            "server with ./scripts/serve (it saves one)."
        )
    if portrait and not turbo:
        _fail("--portrait needs --turbo (only gen3turbo/video takes aspect_ratio).")
    target = _output_path(output, input)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=httpx.Timeout(120, connect=5)) as client:
        try:
            body: dict[str, Any] = {"text_prompt": prompt, "structure_transformation": structure}
            body |= {"seconds": seconds} if seconds is not None else {}
            body |= {"seed": seed} if seed is not None else {}
            if turbo:
                body["aspect_ratio"] = "portrait" if portrait else "landscape"
            task = _run(client, base, input, body, {"email": email} if email else {})
            if task["status"] != "SUCCEEDED":
                _fail(f"task {task['taskId']} {task['status']}: {task.get('error')}")
            _download(client, task["artifacts"][0]["url"], target)
        except httpx.TransportError as exc:
            _fail(
                f"cannot reach a Vidmorph server at {server} ({_reason(exc)}). Start one with "
                "./scripts/serve, or pass --url."
            )
    console.print(
        f"wrote {target} (seed {task['options']['seed']}, task {task['taskId']})", soft_wrap=True
    )


def _run(
    client: httpx.Client, base: str, path: Path, body: dict[str, Any], account: dict[str, str]
) -> dict[str, Any]:
    """Upload `path` to `account` (its email, or none for the only one), create the task of
    `body` from it and follow it to its end."""
    # the token, the account and the length limit, before uploading
    features = _call(client.get(f"{base}/features/", params=account))
    seconds = body.get("seconds")
    if seconds is not None and seconds > int(features.get("maxSeconds", seconds)):
        _fail(f"--seconds {seconds}: this server makes at most {features['maxSeconds']} s.")
    body = {"assetId": _upload(client, base, path, account), **body}
    endpoint = "gen3turbo/video" if "aspect_ratio" in body else "gen3/video"
    task = _call(client.post(f"{base}/{endpoint}", json=body))
    try:
        return _follow(client, base, task)
    except KeyboardInterrupt:
        _fail(f"interrupted; task {task['taskId']} goes on on the server.")


def _output_path(given: str | None, source: Path) -> Path:
    """Where the result goes, checked before anything is uploaded (and paid for): a folder
    given as `-o` (one that exists, or any written with a trailing slash) gets the default
    name inside it; a missing or read-only folder is refused."""
    name = f"{source.stem}-vidmorph.mp4"
    if given is None:
        output = source.with_name(name)
    elif given.endswith(("/", os.sep)) or Path(given).is_dir():
        output = Path(given) / name
    else:
        output = Path(given)
    folder = output.parent
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        _fail(f"-o {given}: {folder} {what}.")
    if not os.access(folder, os.W_OK):
        _fail(f"-o {output}: the folder {folder} cannot be written to.")
    return output


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if "refused" in str(exc).lower() else "cannot connect"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return type(exc).__name__


def _call(resp: httpx.Response) -> Any:
    if resp.status_code >= 400:
        try:
            message = resp.json().get("error") or resp.text
        except ValueError:
            message = resp.text[:200]
        hint = " (check --token or VIDMORPH_API_TOKEN)" if resp.status_code == 401 else ""
        if "email is required" in message:
            hint = " (pass --email; GET /v1/runwayml/accounts lists them)"
        _fail(f"HTTP {resp.status_code} from {resp.request.url.path}: {message}{hint}")
    return resp.json()


def _upload(client: httpx.Client, base: str, path: Path, account: dict[str, str]) -> str:
    ctype = mimetypes.guess_type(path.name)[0] or "video/mp4"
    with path.open("rb") as body:
        resp = client.post(
            f"{base}/assets/",
            params={"name": path.stem, **account},
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
        while task["status"] in _IN_FLIGHT:
            time.sleep(0.5)
            task = _call(client.get(f"{base}/tasks/{task['taskId']}"))
            ratio = float(task["progressRatio"] or 0)
            bar.update(row, completed=ratio, description=task["progressText"] or task["status"])
        bar.update(row, completed=1.0, description=task["status"])
    return task


def _download(client: httpx.Client, url: str, output: Path) -> None:
    partial = output.with_name(f".{output.name}.part")
    try:
        with client.stream("GET", url) as resp:
            if resp.status_code >= 400:
                _fail(f"HTTP {resp.status_code} downloading the result from {url}")
            with partial.open("wb") as out:
                for chunk in resp.iter_bytes():
                    out.write(chunk)
        partial.replace(output)
    except OSError as exc:
        _fail(f"could not write {output}: {exc.strerror or exc}; the result stays at {url}")
    finally:
        partial.unlink(missing_ok=True)


def sample(
    output: Annotated[
        Path, typer.Argument(dir_okay=False, metavar="PATH", help="Where to write it.")
    ] = Path("input.mp4"),
    seconds: Annotated[float, typer.Option(min=0.5, max=60, metavar="S", help="Length.")] = 5.0,
) -> None:
    """Write a sample video (a drawn street with traffic, 640x384, with sound) to try with."""
    from vidmorph.media.sample import write_sample

    write_sample(output, seconds=seconds)
    console.print(f"wrote {output} ({seconds:g} s)")
