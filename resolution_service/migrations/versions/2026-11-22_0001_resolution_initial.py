"""resolution: cases, inbox, outbox

Revision ID: resolution_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.outbox_migration import create_inbox, create_outbox, drop_inbox, drop_outbox

revision: str = "resolution_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "resolution"


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("complaint_id", sa.Uuid, nullable=False),
        sa.Column("complaint_number", sa.Text, nullable=False),
        sa.Column("merchant_id", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("priority", sa.Text, nullable=False),
        sa.Column("team", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("first_response_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("correlation_id", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.UniqueConstraint("complaint_id", name="uq_cases_complaint_id"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_cases_merchant_id_status", "cases", ["merchant_id", "status"], schema=SCHEMA
    )
    create_inbox(SCHEMA)
    create_outbox(SCHEMA)


def downgrade() -> None:
    drop_outbox(SCHEMA)
    drop_inbox(SCHEMA)
    op.drop_index("ix_cases_merchant_id_status", table_name="cases", schema=SCHEMA)
    op.drop_table("cases", schema=SCHEMA)
