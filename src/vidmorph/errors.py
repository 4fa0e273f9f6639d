"""Every typed error Vidmorph raises on purpose, each with its HTTP status and public message.

`api/errors.py` maps these to the contract's envelope `{"error": msg, "code": status, **extra}`;
workers store `public_message` on a failed task so API callers and webhook receivers read the
same text. Imports nothing from the package.
"""

from __future__ import annotations

from typing import Any, ClassVar


class VidmorphError(Exception):
    """Internal error."""

    status: ClassVar[int] = 500

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.public_message = message or (self.__doc__ or "Error").strip()
        self.extra = extra
        super().__init__(self.public_message)


class BadRequest(VidmorphError):
    """Bad request."""

    status = 400


class InvalidMedia(BadRequest):
    """The uploaded file is not a readable video."""


class Unauthorized(VidmorphError):
    """Unauthorized"""

    status = 401


class AccountSuspended(Unauthorized):
    """This account has been suspended."""


class NotFound(VidmorphError):
    """Not found."""

    status = 404


class Conflict(VidmorphError):
    """Idempotency-Key was already used with a different request."""

    status = 409


class InsufficientCredits(VidmorphError):
    """You do not have enough credits to run this task."""

    status = 412


class PayloadTooLarge(VidmorphError):
    """The upload is larger than this server accepts."""

    status = 413


class RequestTimeout(VidmorphError):
    """The request body stalled: nothing arrived for too long."""

    status = 408


class UnsupportedMediaType(BadRequest):
    """Unsupported Content-Type."""


class AccountBusy(VidmorphError):
    """The account is busy."""

    status = 429

    def __init__(self, email: str, max_jobs: int, running_tasks: list[dict[str, Any]]) -> None:
        # compat(useapi §8): clients read `runningTasks[email]` to see what holds the slots.
        # The count is what runs, which a per-call maxJobs below the account's can leave above
        # the limit asked for; the limit is named when the two differ.
        running = len(running_tasks)
        limit = "" if running == max_jobs else f" (maxJobs {max_jobs})"
        super().__init__(
            f"Account {email} is busy executing {running} tasks{limit}",
            runningTasks={email: running_tasks},
        )


class QueueFull(VidmorphError):
    """You have too many tasks running or pending. Please wait for some of them to finish before starting more."""  # noqa: E501

    status = 429


class TooManyRequests(VidmorphError):
    """Too many requests at once; try again shortly."""

    status = 429


class RequestTooLarge(VidmorphError):
    """This request needs more memory or time than this worker has."""

    status = 400


class ServiceUnavailable(VidmorphError):
    """A service Vidmorph depends on is unreachable; try again shortly."""

    status = 503


class StorageUnavailable(ServiceUnavailable):
    """Media storage is unreachable; try again shortly."""


class TaskCancelled(Exception):
    """Raised inside a running engine by `RunHooks.check_cancelled()`; never reaches HTTP."""


class StageStopped(Exception):
    """Raised inside one stage of a task's media pipeline (decode, engine, encode) because
    another stage ended early; the first stage's own error is the one reported."""


class TaskFailed(VidmorphError):
    """The task failed."""

    status = 500

    def __init__(self, message: str, reason: str = "INTERNAL.BAD_OUTPUT.CODE01") -> None:
        super().__init__(message)
        self.reason = reason
