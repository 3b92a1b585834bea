"""notification: merchants' webhook endpoints; dead letters replay on a fresh schedule

Revision ID: notification_0006_webhooks
Revises: notification_0005_delivery_log
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "notification_0006_webhooks"
down_revision: str | None = "notification_0005_delivery_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "notification"


def upgrade() -> None:
    op.add_column(
        "messages",
        sa.Column("retry_base", sa.Integer, nullable=False, server_default=sa.text("0")),
        schema=SCHEMA,
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("merchant_id", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("sealed_secret", sa.Text, nullable=False),
        sa.Column("label", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_endpoints"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_webhook_endpoints_merchant_id", "webhook_endpoints", ["merchant_id"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_endpoints_merchant_id", table_name="webhook_endpoints", schema=SCHEMA)
    op.drop_table("webhook_endpoints", schema=SCHEMA)
    op.drop_column("messages", "retry_base", schema=SCHEMA)
