"""notification: the delivery log (messages and their attempts); reachable channels

Revision ID: notification_0005_delivery_log
Revises: notification_0004_erasures
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "notification_0005_delivery_log"
down_revision: str | None = "notification_0004_erasures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "notification"


def upgrade() -> None:
    op.add_column(
        "recipients",
        sa.Column("reachable_channels", postgresql.ARRAY(sa.Text()), nullable=True),
        schema=SCHEMA,
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("delivery_key", sa.Text, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("complaint_id", sa.Uuid, nullable=False),
        sa.Column("complaint_number", sa.Text, nullable=False),
        sa.Column("correlation_id", sa.Text, nullable=False),
        sa.Column("message_type", sa.Text, nullable=False),
        sa.Column("audience", sa.Text, nullable=False),
        sa.Column("recipient_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=True),
        sa.Column("essential", sa.Boolean, nullable=False),
        sa.Column("urgent", sa.Boolean, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("context", postgresql.JSONB(), nullable=False),
        sa.Column("subject", sa.Text, nullable=True),
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("template", sa.Text, nullable=True),
        sa.Column("template_version", sa.Integer, nullable=True),
        sa.Column("locale", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("provider_reference", sa.Text, nullable=True),
        sa.Column("provider_response", sa.Text, nullable=True),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.UniqueConstraint("delivery_key", name="uq_messages_delivery_key"),
        schema=SCHEMA,
    )
    op.create_index("ix_messages_complaint_id", "messages", ["complaint_id"], schema=SCHEMA)
    op.create_index("ix_messages_status", "messages", ["status"], schema=SCHEMA)
    op.create_table(
        "delivery_attempts",
        sa.Column("message_id", sa.Uuid, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("retryable", sa.Boolean, nullable=False),
        sa.Column("provider_reference", sa.Text, nullable=True),
        sa.Column("provider_response", sa.Text, nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("message_id", "attempt", name="pk_delivery_attempts"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            [f"{SCHEMA}.messages.id"],
            name="fk_delivery_attempts_message_id_messages",
            ondelete="CASCADE",
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("delivery_attempts", schema=SCHEMA)
    op.drop_index("ix_messages_status", table_name="messages", schema=SCHEMA)
    op.drop_index("ix_messages_complaint_id", table_name="messages", schema=SCHEMA)
    op.drop_table("messages", schema=SCHEMA)
    op.drop_column("recipients", "reachable_channels", schema=SCHEMA)
