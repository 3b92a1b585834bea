"""triage: erasures (complaints whose customer was erased, and the pseudonym they got)

Revision ID: triage_0004_erasures
Revises: triage_0003_access
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "triage_0004_erasures"
down_revision: str | None = "triage_0003_access"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "triage"


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("complaint_id", sa.Uuid, nullable=False),
        sa.Column("customer_pseudonym", sa.Text, nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("complaint_id", name="pk_erasures"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("erasures", schema=SCHEMA)
