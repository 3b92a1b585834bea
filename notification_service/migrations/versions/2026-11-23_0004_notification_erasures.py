"""notification: erasures; an erased recipient keeps no contact

Revision ID: notification_0004_erasures
Revises: notification_0003_access
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "notification_0004_erasures"
down_revision: str | None = "notification_0003_access"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "notification"


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("complaint_id", sa.Uuid, nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("complaint_id", name="pk_erasures"),
        schema=SCHEMA,
    )
    op.alter_column("recipients", "sealed_contact", nullable=True, schema=SCHEMA)


def downgrade() -> None:
    # The older schema cannot hold a recipient without a contact: erased recipients go, and
    # their notifications become visible to admins only.
    op.execute(f"DELETE FROM {SCHEMA}.recipients WHERE sealed_contact IS NULL")
    op.alter_column("recipients", "sealed_contact", nullable=False, schema=SCHEMA)
    op.drop_table("erasures", schema=SCHEMA)
