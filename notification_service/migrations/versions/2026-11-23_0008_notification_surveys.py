"""notification: cases (from case.opened) and satisfaction surveys

Revision ID: notification_0008_surveys
Revises: notification_0007_preferences
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "notification_0008_surveys"
down_revision: str | None = "notification_0007_preferences"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "notification"


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("complaint_id", sa.Uuid, nullable=False),
        sa.Column("case_id", sa.Uuid, nullable=False),
        sa.Column("complaint_number", sa.Text, nullable=False),
        sa.Column("merchant_id", sa.Text, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("complaint_id", name="pk_cases"),
        sa.UniqueConstraint("case_id", name="uq_cases_case_id"),
        schema=SCHEMA,
    )
    op.create_table(
        "surveys",
        sa.Column("case_id", sa.Uuid, nullable=False),
        sa.Column("complaint_id", sa.Uuid, nullable=False),
        sa.Column("complaint_number", sa.Text, nullable=False),
        sa.Column("merchant_id", sa.Text, nullable=False),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token", sa.Text, nullable=True),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("score", sa.Integer, nullable=True),
        sa.Column("reasons", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("subjects", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("case_id", name="pk_surveys"),
        schema=SCHEMA,
    )
    op.create_index("ix_surveys_merchant_id", "surveys", ["merchant_id"], schema=SCHEMA)
    op.create_index("ix_surveys_complaint_id", "surveys", ["complaint_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_surveys_complaint_id", table_name="surveys", schema=SCHEMA)
    op.drop_index("ix_surveys_merchant_id", table_name="surveys", schema=SCHEMA)
    op.drop_table("surveys", schema=SCHEMA)
    op.drop_table("cases", schema=SCHEMA)
