"""notification: API keys and users (access control); who a recipient's complaint belongs to

Revision ID: notification_0003_access
Revises: notification_0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.auth.migration import create_access_tables, drop_access_tables

revision: str = "notification_0003_access"
down_revision: str | None = "notification_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "notification"


def upgrade() -> None:
    create_access_tables(SCHEMA)
    # Scope of reads: the storefront that posted the complaint and the merchant it concerns.
    # Nullable: rows recorded before this revision have neither and are visible to admins only.
    op.add_column("recipients", sa.Column("storefront_id", sa.Text, nullable=True), schema=SCHEMA)
    op.add_column("recipients", sa.Column("merchant_id", sa.Text, nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("recipients", "merchant_id", schema=SCHEMA)
    op.drop_column("recipients", "storefront_id", schema=SCHEMA)
    drop_access_tables(SCHEMA)
