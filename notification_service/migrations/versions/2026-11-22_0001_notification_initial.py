"""notification: recipients, notifications, inbox, outbox

Revision ID: notification_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.outbox_migration import create_inbox, create_outbox, drop_inbox, drop_outbox

revision: str = "notification_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "notification"


def upgrade() -> None:
    op.create_table(
        "recipients",
        sa.Column("complaint_id", sa.Uuid, nullable=False),
        sa.Column("complaint_number", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("sealed_contact", sa.Text, nullable=False),
        sa.Column("preferred_channel", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("complaint_id", name="pk_recipients"),
        schema=SCHEMA,
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("complaint_id", sa.Uuid, nullable=False),
        sa.Column("complaint_number", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("respond_by", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("complaint_id", "kind", name="uq_notifications_complaint_id_kind"),
        schema=SCHEMA,
    )
    op.create_index("ix_notifications_status", "notifications", ["status"], schema=SCHEMA)
    create_inbox(SCHEMA)
    create_outbox(SCHEMA)


def downgrade() -> None:
    drop_outbox(SCHEMA)
    drop_inbox(SCHEMA)
    op.drop_index("ix_notifications_status", table_name="notifications", schema=SCHEMA)
    op.drop_table("notifications", schema=SCHEMA)
    op.drop_table("recipients", schema=SCHEMA)
