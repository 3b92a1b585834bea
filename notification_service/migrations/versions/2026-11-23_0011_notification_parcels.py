"""notification: the parcel of a complaint, as its merchant or carrier reports it

Revision ID: notification_0011_parcels
Revises: notification_0010_staff
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "notification_0011_parcels"
down_revision: str | None = "notification_0010_staff"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "notification"


def upgrade() -> None:
    op.create_table(
        "parcels",
        sa.Column("complaint_id", sa.Uuid, nullable=False),
        sa.Column("carrier", sa.Text, nullable=False),
        sa.Column("tracking_number", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expected_delivery_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered", sa.Boolean, nullable=False),
        sa.Column("reported_by", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("complaint_id", name="pk_parcels"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("parcels", schema=SCHEMA)
