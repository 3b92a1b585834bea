"""intake: API keys and users (access control); the storefront that posted each complaint

Revision ID: intake_0004_access
Revises: intake_0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.auth.migration import create_access_tables, drop_access_tables

revision: str = "intake_0004_access"
down_revision: str | None = "intake_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "intake"


def upgrade() -> None:
    create_access_tables(SCHEMA)
    # Nullable: complaints posted before access control have no storefront; admins see them.
    op.add_column("complaints", sa.Column("storefront_id", sa.Text, nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("complaints", "storefront_id", schema=SCHEMA)
    drop_access_tables(SCHEMA)
