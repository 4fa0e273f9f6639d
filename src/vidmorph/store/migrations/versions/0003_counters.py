"""counters: the service-wide in-flight count, kept by admission and every terminal move"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    # Seeded from the tasks already queued; the migration holds the migration lock, and the
    # sweeper's reconcile corrects any admission that raced an older process meanwhile.
    op.execute(
        "INSERT INTO counters (name, value) SELECT 'in_flight', COUNT(*) FROM tasks "
        "WHERE status IN ('PENDING', 'RUNNING')"
    )


def downgrade() -> None:
    op.drop_table("counters")
