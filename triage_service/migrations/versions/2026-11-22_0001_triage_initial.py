"""triage: triages, inbox, outbox

Revision ID: triage_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.outbox_migration import create_inbox, create_outbox, drop_inbox, drop_outbox

revision: str = "triage_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "triage"


def upgrade() -> None:
    op.create_table(
        "triages",
        sa.Column("complaint_id", sa.Uuid, nullable=False),
        sa.Column("complaint_number", sa.Text, nullable=False),
        sa.Column("merchant_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("priority", sa.Text, nullable=False),
        sa.Column("team", sa.Text, nullable=False),
        sa.Column("provisional", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_response_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("triaged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("correlation_id", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("complaint_id", name="pk_triages"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_triages_priority_first_response_due_at",
        "triages",
        ["priority", "first_response_due_at"],
        schema=SCHEMA,
    )
    create_inbox(SCHEMA)
    create_outbox(SCHEMA)


def downgrade() -> None:
    drop_outbox(SCHEMA)
    drop_inbox(SCHEMA)
    op.drop_index("ix_triages_priority_first_response_due_at", table_name="triages", schema=SCHEMA)
    op.drop_table("triages", schema=SCHEMA)
