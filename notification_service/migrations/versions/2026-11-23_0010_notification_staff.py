"""notification: the staff directory (an agent's own address) and each case's assignee

Revision ID: notification_0010_staff
Revises: notification_0009_progress
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "notification_0010_staff"
down_revision: str | None = "notification_0009_progress"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "notification"


def upgrade() -> None:
    op.create_table(
        "staff_contacts",
        sa.Column("staff_id", sa.Text, nullable=False),
        sa.Column("sealed_email", sa.Text, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("staff_id", name="pk_staff_contacts"),
        schema=SCHEMA,
    )
    op.add_column("cases", sa.Column("assignee_id", sa.Text, nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("cases", "assignee_id", schema=SCHEMA)
    op.drop_table("staff_contacts", schema=SCHEMA)
