"""spent_usage and account_grants: what deleted tasks spent, and the plans the operator set,
kept past the rows they came from; ix_tasks_in_flight: the tasks in flight, by user and account"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spent_usage",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("task_type", sa.String(length=20), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("tasks", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "email", "day", "task_type"),
    )
    in_flight = sa.text("status IN ('PENDING', 'RUNNING', 'THROTTLED')")
    op.create_index(
        "ix_tasks_in_flight",
        "tasks",
        ["user_id", "email"],
        sqlite_where=in_flight,
        postgresql_where=in_flight,
    )
    op.create_table(
        "account_grants",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("plan", sa.String(length=20), nullable=True),
        sa.Column("num_plan_credits", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("user_id", "email"),
    )


def downgrade() -> None:
    op.drop_table("account_grants")
    op.drop_index("ix_tasks_in_flight", table_name="tasks")
    op.drop_table("spent_usage")
