"""notification: progress updates while a complaint is open

Revision ID: notification_0009_progress
Revises: notification_0008_surveys
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "notification_0009_progress"
down_revision: str | None = "notification_0008_surveys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "notification"


def upgrade() -> None:
    op.create_table(
        "progress_updates",
        sa.Column("complaint_id", sa.Uuid, nullable=False),
        sa.Column("complaint_number", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent", sa.Integer, nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stop_reason", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("complaint_id", name="pk_progress_updates"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("progress_updates", schema=SCHEMA)
