"""triage: when the first response was given (the first-response clock is met)

Revision ID: triage_0006_first_response
Revises: triage_0005_sla
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "triage_0006_first_response"
down_revision: str | None = "triage_0005_sla"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "triage"


def upgrade() -> None:
    op.add_column(
        "triages",
        sa.Column("first_responded_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("triages", "first_responded_at", schema=SCHEMA)
