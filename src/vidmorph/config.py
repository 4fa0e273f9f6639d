"""Settings: the one reader of the environment (prefix VIDMORPH_), built once per process."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: the longest `VIDMORPH_MAX_SECONDS` a deployment may set: an hour of output per task
MAX_SECONDS_CEILING = 3600


#: characters after `user:1-` a fixed API token needs (made ones have 32)
MIN_TOKEN_SECRET = 24


class Settings(BaseSettings):
    """Every knob Vidmorph has. Tests build `Settings(...)` directly."""

    model_config = SettingsConfigDict(env_prefix="VIDMORPH_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(8000, description="Port the HTTP server binds to.")
    data_dir: Path = Field(Path("./vidmorph-data"), description="Database, files and keys.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in data_dir.")
    public_url: str = Field("", description="Base URL clients reach; empty means host:port.")
    api_token: str = Field("", description="Fixed token for the default user (user:1-...).")
    engine: str = Field("preview", description="Engine name, or module:factory for a plugin.")
    engine_device: str = Field("cpu", description="Device the engine loads on (cpu, cuda).")
    engine_dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto",
        description="Diffusion weights' dtype; auto is bfloat16 on CUDA and float32 on a CPU.",
    )
    ltx_model: str = Field(
        "Lightricks/LTX-Video-0.9.8-13B-distilled",
        description="VIDMORPH_ENGINE=ltx weights: a hub id or a local diffusers directory.",
    )
    ltx_window_frames: int = Field(161, ge=9, description="LTX frames per window (8k+1).")
    ltx_overlap_frames: int = Field(25, ge=1, description="LTX frames shared by windows (8k+1).")
    engine_memory_budget_bytes: int | None = Field(
        None, description="Device memory a job may use; empty means what the device has free."
    )
    wan_max_area_px: int | None = Field(
        None, description="Cap on the Wan working frame area; empty means the model's native."
    )
    wan_model: str = Field(
        "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        description="VIDMORPH_ENGINE=wan weights: a hub id or a local diffusers directory.",
    )
    runway_base_url: str = Field(
        "https://api.dev.runwayml.com",
        description="VIDMORPH_ENGINE=runway: the Runway-API server tasks are handed to.",
    )
    runway_api_secret: str = Field("", description="VIDMORPH_ENGINE=runway: its API key.")
    runway_model: Literal["gen4_aleph", "aleph2"] = Field(
        "gen4_aleph", description="VIDMORPH_ENGINE=runway: the upstream model."
    )
    runway_poll_s: float = Field(
        5.0, gt=0, description="VIDMORPH_ENGINE=runway: how often the upstream task is read."
    )

    workers: int = Field(1, ge=0, description="In-process worker threads; 0 admits only.")
    lease_s: float = Field(30.0, gt=0, description="A running task's lease; renewed by a beat.")
    recover_interval_s: float = Field(2.0, gt=0, description="How often lapsed leases are swept.")
    max_attempts: int = Field(3, ge=1, description="Runs of one task before it FAILS as INTERNAL.")
    max_queue_depth: int = Field(200, ge=1, description="PENDING+RUNNING tasks service-wide.")

    max_upload_bytes: int = Field(256 * 1024 * 1024, ge=1, description="Largest asset upload.")
    max_input_pixels: int = Field(
        4096 * 2304,
        ge=64 * 64,
        description="Largest frame (width x height) an upload may have; DCI and UHD 4K fit.",
    )
    max_json_bytes: int = Field(1024 * 1024, ge=1024, description="Largest JSON or form body.")

    # The HTTP server (api/server.py): limits every process applies before the app runs.
    max_header_bytes: int = Field(
        64 * 1024, ge=1024, description="Largest request line plus headers; more gets 431."
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="Time a client has to send a request's line and headers."
    )
    body_timeout_s: float = Field(
        30.0, gt=0, description="Longest pause inside a request body; a stalled one gets 408."
    )
    min_upload_rate_bytes_s: float = Field(
        4096,
        ge=0,
        description="Slowest average an upload may arrive at once BODY_TIMEOUT_S have passed "
        "(408 below); 0: no floor.",
    )
    keep_alive_s: float = Field(
        65.0, gt=0, description="Idle keep-alive connections close after this (above 60 s LBs)."
    )
    max_connections: int = Field(
        1000, ge=1, description="Open connections per process; past it, answers are 503."
    )
    backlog: int = Field(2048, ge=1, description="Connections the kernel queues per process.")
    db_pool_size: int = Field(
        20, ge=1, le=500, description="Database connections a process keeps; its API threads."
    )
    access_log: bool = Field(False, description="Log a line per request (it costs throughput).")
    max_seconds: int = Field(
        10,
        ge=1,
        le=MAX_SECONDS_CEILING,
        description="Longest output a task may ask for (the contract's 10).",
    )
    events_poll_s: float = Field(
        0.5, gt=0, le=10, description="How often a task's event stream looks for a change."
    )
    url_ttl_s: int = Field(7 * 24 * 3600, ge=60, description="Lifetime of signed file URLs.")

    default_email: str = Field("default@vidmorph.local", description="The default account.")
    default_max_jobs: int = Field(5, ge=1, le=10)
    default_plan_credits: int = Field(100_000, ge=0)
    default_plan: str = Field("unlimited", pattern="^(standard|unlimited)$")
    self_service_plans: bool = Field(
        False,
        description="Let users set their accounts' plan and numPlanCredits through the API (a "
        "server for one trusted team); otherwise only `vidmorph account set` changes them.",
    )
    max_accounts: int = Field(20, ge=1, description="Accounts one user may have.")
    max_user_tasks: int = Field(
        50,
        ge=0,
        description="Tasks one user may have pending, throttled or running across all its "
        "accounts (429 past it), so no one user fills MAX_QUEUE_DEPTH; 0: no cap.",
    )
    metrics_token: str = Field(
        "", description="When set, /metrics answers only `Authorization: Bearer <it>`."
    )

    callback_allow_private: bool = Field(False, description="Allow loopback/private replyUrl.")
    callback_timeout_s: float = Field(10.0, gt=0, description="Each phase of a callback POST.")
    callback_total_s: float = Field(30.0, gt=0, description="A whole callback POST, at most.")
    fetch_total_s: float = Field(
        300.0, gt=0, description="Fetching a client's media URL (Runway's videoUri), at most."
    )
    callback_events: Literal["final", "all"] = Field(
        "final",
        description="When replyUrl is called: once, at the terminal state (the contract), or "
        "also on every status change and on progress (throttled).",
    )
    callback_progress_interval_s: float = Field(2.0, ge=0, description="Progress throttle.")
    callback_retry_base_s: float = Field(1.0, gt=0, description="First retry delay; doubles.")
    callback_retry_max_s: float = Field(300.0, gt=0, description="Longest delay between tries.")
    callback_expire_s: float = Field(24 * 3600.0, gt=0, description="Give up after this long.")

    broker_url: str = Field(
        "", description="Celery broker (redis://..., amqp://...); empty runs tasks in-process."
    )
    task_engines: dict[str, str] = Field(
        default_factory=dict,
        description='Engine per task type, e.g. {"gen3a_turbo": "wan"}; others use `engine`.',
    )
    redispatch_s: float = Field(
        60.0, gt=0, description="A PENDING task is sent to the broker again after this long."
    )
    broker_visibility_timeout_s: int = Field(
        7 * 24 * 3600,
        ge=60,
        description="Redis re-delivers an unacked task after this; longer than any task runs.",
    )
    worker_heartbeat_s: float = Field(5.0, gt=0, description="How often workers report in.")
    storage_url: str = Field(
        "", description="s3://bucket/prefix keeps media in S3; empty means files in data_dir."
    )
    s3_endpoint_url: str = Field("", description="S3-compatible endpoint (MinIO, R2, moto).")
    storage_retry_s: float = Field(
        30.0, ge=0, description="How long a task retries an unreachable object store."
    )
    url_signing_key: str = Field(
        "", description="Key for file URLs, the same on every API process; empty: kept in the DB."
    )

    moderation_classifier: bool = Field(True, description="Use the offline text classifier.")
    moderation_suspend_after: int = Field(5, ge=1, description="Moderated tasks that suspend.")
    moderation_window_s: float = Field(24 * 3600.0, gt=0, description="Window for that count.")

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'vidmorph.db').resolve()}"
        if not self.public_url:
            self.public_url = f"http://{self.host}:{self.port}"
        self.public_url = self.public_url.rstrip("/")
        if self.url_signing_key and len(self.url_signing_key) < 32:
            raise ValueError("VIDMORPH_URL_SIGNING_KEY must be at least 32 characters")
        if self.storage_url and not self.storage_url.startswith("s3://"):
            raise ValueError("VIDMORPH_STORAGE_URL must look like s3://bucket/prefix")
        if self.api_token and not (
            self.api_token.startswith("user:1-") and len(self.api_token) >= 7 + MIN_TOKEN_SECRET
        ):
            raise ValueError(
                f"VIDMORPH_API_TOKEN must look like user:1-<random>, with at least "
                f"{MIN_TOKEN_SECRET} random characters"
            )
        return self

    def engine_for(self, task_type: str) -> str:
        """The engine that runs tasks of `task_type` (the fleet routes each to its queue)."""
        return self.task_engines.get(task_type, self.engine)

    @property
    def engines(self) -> list[str]:
        """Every engine the settings route some task type to, sorted."""
        return sorted({self.engine, *self.task_engines.values()})

    @property
    def uses_broker(self) -> bool:
        return bool(self.broker_url)
