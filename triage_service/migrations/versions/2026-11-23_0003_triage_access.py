"""triage: API keys and users (access control)

Revision ID: triage_0003_access
Revises: triage_0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from shared.auth.migration import create_access_tables, drop_access_tables

revision: str = "triage_0003_access"
down_revision: str | None = "triage_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "triage"


def upgrade() -> None:
    create_access_tables(SCHEMA)


def downgrade() -> None:
    drop_access_tables(SCHEMA)
