"""triage: durable timers

Revision ID: triage_0002
Revises: triage_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from shared.db.timers_migration import create_timers, drop_timers

revision: str = "triage_0002"
down_revision: str | None = "triage_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "triage"


def upgrade() -> None:
    create_timers(SCHEMA)


def downgrade() -> None:
    drop_timers(SCHEMA)
