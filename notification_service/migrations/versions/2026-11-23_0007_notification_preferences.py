"""notification: customer preferences

Revision ID: notification_0007_preferences
Revises: notification_0006_webhooks
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "notification_0007_preferences"
down_revision: str | None = "notification_0006_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "notification"


def upgrade() -> None:
    op.create_table(
        "customer_preferences",
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("storefront_id", sa.Text, nullable=True),
        sa.Column("preferences", postgresql.JSONB(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_customer_preferences"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("customer_preferences", schema=SCHEMA)
