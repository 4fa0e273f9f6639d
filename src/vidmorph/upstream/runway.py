"""`VIDMORPH_ENGINE=runway`: each task handed to a Runway-API server through the official SDK.

The input is uploaded (`uploads.create_ephemeral`), a `video_to_video` task is created with the
task's prompt and seed (`VIDMORPH_RUNWAY_MODEL`), and followed every `VIDMORPH_RUNWAY_POLL_S`:
its progress becomes the task's, a cancel here cancels it there, a SAFETY failure there is the
task's moderation failure here, and its output is downloaded. The upstream id is remembered as
soon as it exists, so a worker that restarts mid-task resumes that job instead of paying for a
second one. The server is Runway's by default (`VIDMORPH_RUNWAY_BASE_URL`); another Vidmorph
serving Runway's API works the same.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import httpx

from vidmorph import errors
from vidmorph.callbacks.deadline import Deadline
from vidmorph.callbacks.fetch import write_capped
from vidmorph.config import Settings
from vidmorph.engines.base import RunHooks
from vidmorph.upstream.base import UpstreamJob

log = logging.getLogger(__name__)

_WAITING = ("PENDING", "THROTTLED", "RUNNING")
#: an upstream output past this size is refused (a minute of 1080p H.264 is ~100 MB)
MAX_OUTPUT_BYTES = 2 << 30
DOWNLOAD_TOTAL_S = 600.0


class RunwayUpstream:
    def __init__(self, settings: Settings) -> None:
        self.base_url = settings.runway_base_url.rstrip("/")
        self.secret = settings.runway_api_secret
        self.model = settings.runway_model
        self.poll_s = settings.runway_poll_s
        self._client: Any = None

    def load(self, device: str) -> None:
        from runwayml import RunwayML

        if not self.secret:
            raise ValueError("VIDMORPH_ENGINE=runway needs VIDMORPH_RUNWAY_API_SECRET")
        self._client = RunwayML(api_key=self.secret, base_url=self.base_url, max_retries=3)

    def run_upstream(self, source: Path, work: UpstreamJob, hooks: RunHooks, out: Path) -> None:
        import runwayml

        client = self._client
        try:
            upstream_id = work.resume_id or self._start(client, source, work)
            output = self._follow(client, upstream_id, hooks)
        except runwayml.APIStatusError as exc:
            message = _message(exc.body) or str(exc)
            raise errors.TaskFailed(
                f"The Runway server refused the task: {message}", reason="INTERNAL.UPSTREAM"
            ) from None
        except runwayml.APIConnectionError:
            raise errors.TaskFailed(
                f"The Runway server at {self.base_url} could not be reached.",
                reason="INTERNAL.UPSTREAM",
            ) from None
        _download(output, out)

    def _start(self, client: Any, source: Path, work: UpstreamJob) -> str:
        uri = client.uploads.create_ephemeral(file=source).uri
        job = work.job
        created = client.video_to_video.create(
            model=self.model, prompt_text=job.text_prompt, video_uri=uri, seed=job.seed
        )
        work.remember(created.id)
        log.info("handed to %s as task %s", self.base_url, created.id)
        return str(created.id)

    def _follow(self, client: Any, upstream_id: str, hooks: RunHooks) -> str:
        """Poll until the upstream task ends; its first output URL."""
        while True:
            try:
                hooks.check_cancelled()
            except (errors.TaskCancelled, errors.StageStopped):
                _cancel(client, upstream_id)
                raise
            task = client.tasks.retrieve(upstream_id)
            if task.status == "RUNNING":
                hooks.progress(float(getattr(task, "progress", 0.0) or 0.0))
            elif task.status == "SUCCEEDED":
                return str(task.output[0])
            elif task.status == "FAILED":
                code = getattr(task, "failure_code", None) or "INTERNAL.UPSTREAM"
                raise errors.TaskFailed(str(task.failure), reason=code)
            elif task.status not in _WAITING:
                raise errors.TaskFailed(
                    f"The upstream task ended {task.status}.", reason="INTERNAL.UPSTREAM"
                )
            time.sleep(self.poll_s)


def _cancel(client: Any, upstream_id: str) -> None:
    try:
        client.tasks.delete(upstream_id)
    except Exception as exc:  # the cancel here stands whatever the upstream answers
        log.warning("could not cancel upstream task %s: %s", upstream_id, exc)


def _download(url: str, out: Path) -> None:
    """The upstream's output into `out`: at most MAX_OUTPUT_BYTES within DOWNLOAD_TOTAL_S
    (the operator chose the upstream, not where its output links point)."""

    def failed(why: str) -> errors.TaskFailed:
        out.unlink(missing_ok=True)
        return errors.TaskFailed(
            f"The upstream output could not be downloaded ({why}).", reason="INTERNAL.UPSTREAM"
        )

    try:
        with (
            Deadline(DOWNLOAD_TOTAL_S) as deadline,
            httpx.Client(timeout=httpx.Timeout(60), follow_redirects=True) as client,
            client.stream("GET", url, extensions={"trace": deadline.trace}) as resp,
        ):
            if resp.status_code != 200:
                raise failed(f"HTTP {resp.status_code}")
            if not write_capped(resp, out, MAX_OUTPUT_BYTES):
                raise failed(f"larger than {MAX_OUTPUT_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise failed(type(exc).__name__) from None


def _message(body: object) -> str | None:
    if isinstance(body, dict):
        return str(body.get("error")) if body.get("error") else None
    return None
