"""Table definitions; the Alembic migrations create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()
#: the statuses of a task in flight, as SQL: the partial index's predicate and the queries'
IN_FLIGHT_SQL = "status IN ('PENDING', 'RUNNING', 'THROTTLED')"

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("webhook_secret", String(80), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    #: sha256 hex of the whole token; the token itself is never stored
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("email", String(320), primary_key=True),
    Column("password_hash", String(200), nullable=True),
    Column("max_jobs", Integer, nullable=False),
    Column("plan", String(20), nullable=False),
    Column("num_plan_credits", Integer, nullable=False),
    Column("credits_used", Integer, nullable=False, default=0),
    Column("reply_url", String(1024), nullable=True),
    Column("suspended", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

assets = Table(
    "assets",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("email", String(320), nullable=False),
    Column("name", String(1024), nullable=False),
    Column("media_type", String(10), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("ext", String(10), nullable=False),
    Column("blob_key", String(200), nullable=False),
    Column("preview_key", String(200), nullable=True),
    Column("size_bytes", Integer, nullable=False),
    Column("meta", JSON, nullable=True),
    Column("is_user_upload", Boolean, nullable=False),
    Column("task_uuid", String(36), nullable=True, index=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_assets_owner", "user_id", "email", "created_at"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("email", String(320), nullable=False),
    Column("task_type", String(20), nullable=False),
    Column("status", String(12), nullable=False),
    #: 0 runs first; explore-mode tasks get 1 and run after the others
    Column("priority", Integer, nullable=False),
    Column("params", JSON, nullable=False),
    Column("reply_url", String(1024), nullable=True),
    Column("reply_ref", String(1024), nullable=True),
    Column("credits", Integer, nullable=False),
    Column("progress_ratio", Float, nullable=True),
    Column("progress_text", String(200), nullable=True),
    Column("error", JSON, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", DateTime, nullable=True),
    Column("idempotency_key", String(200), nullable=True),
    Column("request_hash", String(64), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("started_at", DateTime, nullable=True),
    Column("finished_at", DateTime, nullable=True),
    UniqueConstraint("user_id", "idempotency_key", name="uq_tasks_idempotency"),
    Index("ix_tasks_queue", "status", "priority", "created_at"),
    Index("ix_tasks_owner", "user_id", "email", "status"),
    #: the tasks in flight alone (a partial index: small, and only they pay for it), by user
    #: and account; admission counts them (store.admission, whose query spells IN_FLIGHT_SQL
    #: as it is written here, so SQLite and PostgreSQL see that the index covers it)
    Index(
        "ix_tasks_in_flight",
        "user_id",
        "email",
        sqlite_where=text(IN_FLIGHT_SQL),
        postgresql_where=text(IN_FLIGHT_SQL),
    ),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("task_uuid", String(36), nullable=False, index=True),
    Column("user_id", Integer, nullable=False),
    Column("url", String(1024), nullable=False),
    #: scheme://host:port of `url`: concurrent sends are bounded per target
    Column("target", String(300), nullable=True),
    Column("body", LargeBinary, nullable=False),
    Column("terminal", Boolean, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    #: "pending", "delivered" or "dropped" (expired, refused or a non-terminal miss)
    Column("state", String(10), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Index("ix_deliveries_due", "state", "next_attempt_at"),
)

moderation_events = Table(
    "moderation_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("email", String(320), nullable=False),
    Column("category", String(50), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index("ix_moderation_account", "user_id", "email", "created_at"),
)

#: secrets every process of a fleet shares (the file-URL signing key), made once, never empty
shared_secrets = Table(
    "shared_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

#: named leases that one process of the fleet holds at a time (the recovery sweeper's leader)
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(100), nullable=False),
    Column("expires_at", DateTime, nullable=False),
)

#: every worker process (in-process pool or Celery worker), refreshed by its heartbeat
workers = Table(
    "workers",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("engine", String(200), nullable=False),
    Column("device", String(50), nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("memory_total_bytes", BigInteger, nullable=True),
    Column("memory_free_bytes", BigInteger, nullable=True),
    Column("running", JSON, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("seen_at", DateTime, nullable=False),
    Index("ix_workers_seen", "seen_at"),
)

#: fleet-wide Prometheus counters and histograms, added to by whichever process observes
metric_series = Table(
    "metric_series",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("labels", String(400), primary_key=True),
    Column("data", JSON, nullable=False),
)

#: service-wide figures kept exact in the transactions that change them: `in_flight` is the
#: number of PENDING, THROTTLED and RUNNING tasks, so admission checks the queue depth in one UPDATE
counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

#: Runway API ephemeral uploads: a `runway://` URI names the bytes at `storage_key` for 24 h,
#: then the asset made from them on first use (store.uploads)
uploads = Table(
    "uploads",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("filename", String(255), nullable=False),
    Column("storage_key", String(400), nullable=False),
    Column("asset_uuid", String(36), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
)

#: a task handed to an upstream service (VIDMORPH_ENGINE=runway): its id there, kept as soon
#: as it exists, so a worker that restarts resumes that job instead of starting a second one
upstream_jobs = Table(
    "upstream_jobs",
    metadata,
    Column("task_uuid", String(36), primary_key=True),
    Column("upstream_id", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

#: what deleted tasks spent, folded in at their deletion by UTC day of creation and task type,
#: so the account's usage figures (store.usage) outlive the task rows they were counted from
spent_usage = Table(
    "spent_usage",
    metadata,
    Column("user_id", Integer, primary_key=True),
    Column("email", String(320), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("task_type", String(20), primary_key=True),
    Column("credits", BigInteger, nullable=False),
    Column("tasks", BigInteger, nullable=False),
)

#: the plan and credits the operator set for an account (`vidmorph account set`), kept when
#: the account is deleted, so one made again under the same email has them, not the defaults
account_grants = Table(
    "account_grants",
    metadata,
    Column("user_id", Integer, primary_key=True),
    Column("email", String(320), primary_key=True),
    Column("plan", String(20), nullable=True),
    Column("num_plan_credits", Integer, nullable=True),
)
