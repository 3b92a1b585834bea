"""triage: classifier decisions, SLA clocks, group complaints, re-triage and corrections

Every column added to `triages` is nullable or has a default, so rows triaged before it stay
valid: they keep their category, priority and first-response deadline, show no subcategory
or reasons list, and have no SLA timer (nothing announces their deadlines).

Revision ID: triage_0005_sla
Revises: triage_0004_erasures
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "triage_0005_sla"
down_revision: str | None = "triage_0004_erasures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "triage"
EMPTY_JSON_LIST = sa.text("'[]'::jsonb")
TIMESTAMPS = (
    "resolution_due_at",
    "stopped_at",
    "first_response_warned_at",
    "first_response_breached_at",
    "resolution_warned_at",
    "resolution_breached_at",
    "retriaged_at",
)
TEXTS = (
    "subcategory",
    "responsibility",
    "classifier_version",
    "description",
    "target",
    "channel",
    "group_key",
    "stop_reason",
    "retriaged_by",
    "retriage_reason",
)
JSON_LISTS = ("reasons", "signals", "demands", "pauses")


def upgrade() -> None:
    for name in TEXTS:
        op.add_column("triages", sa.Column(name, sa.Text, nullable=True), schema=SCHEMA)
    for name in TIMESTAMPS:
        op.add_column(
            "triages", sa.Column(name, sa.DateTime(timezone=True), nullable=True), schema=SCHEMA
        )
    for name in JSON_LISTS:
        op.add_column(
            "triages",
            sa.Column(name, postgresql.JSONB, nullable=False, server_default=EMPTY_JSON_LIST),
            schema=SCHEMA,
        )
    op.add_column("triages", sa.Column("confidence", sa.Float, nullable=True), schema=SCHEMA)
    op.add_column(
        "triages",
        sa.Column("manual_review", sa.Boolean, nullable=False, server_default=sa.text("false")),
        schema=SCHEMA,
    )
    op.add_column(
        "triages",
        sa.Column(
            "skus",
            postgresql.ARRAY(sa.Text),
            nullable=False,
            server_default=sa.text("'{}'::text[]"),
        ),
        schema=SCHEMA,
    )
    op.add_column(
        "triages",
        sa.Column("escalation_level", sa.Integer, nullable=False, server_default=sa.text("0")),
        schema=SCHEMA,
    )
    # While the SLA clocks are paused there is no deadline.
    op.alter_column("triages", "first_response_due_at", nullable=True, schema=SCHEMA)
    # The existing one-line reason becomes the first entry of the reasons list.
    op.execute(f"UPDATE {SCHEMA}.triages SET reasons = jsonb_build_array(reason)")

    op.create_index(
        "ix_triages_team_first_response_due_at",
        "triages",
        ["team", "first_response_due_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("stopped_at IS NULL"),
    )
    op.create_index(
        "ix_triages_merchant_id_received_at",
        "triages",
        ["merchant_id", "received_at"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_triages_customer_id_received_at",
        "triages",
        ["customer_id", "received_at"],
        schema=SCHEMA,
    )
    op.create_index("ix_triages_skus", "triages", ["skus"], schema=SCHEMA, postgresql_using="gin")
    op.create_index(
        "ix_triages_group_key",
        "triages",
        ["group_key"],
        schema=SCHEMA,
        postgresql_where=sa.text("group_key IS NOT NULL"),
    )

    op.create_table(
        "corrections",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("complaint_id", sa.Uuid, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("target", sa.Text, nullable=True),
        sa.Column("channel", sa.Text, nullable=True),
        sa.Column("demands", postgresql.JSONB, nullable=False, server_default=EMPTY_JSON_LIST),
        sa.Column("previous_category", sa.Text, nullable=False),
        sa.Column("previous_subcategory", sa.Text, nullable=True),
        sa.Column("previous_priority", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("subcategory", sa.Text, nullable=True),
        sa.Column("priority", sa.Text, nullable=False),
        sa.Column("teaches_classifier", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("corrected_by", sa.Text, nullable=False),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_corrections"),
        schema=SCHEMA,
    )
    op.create_index("ix_corrections_complaint_id", "corrections", ["complaint_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_corrections_complaint_id", table_name="corrections", schema=SCHEMA)
    op.drop_table("corrections", schema=SCHEMA)
    for index in (
        "ix_triages_group_key",
        "ix_triages_skus",
        "ix_triages_customer_id_received_at",
        "ix_triages_merchant_id_received_at",
        "ix_triages_team_first_response_due_at",
    ):
        op.drop_index(index, table_name="triages", schema=SCHEMA)
    # A paused complaint has no deadline: the previous schema needs one, so it gets its
    # receipt time (overdue, which is what a lost deadline should look like).
    op.execute(
        f"UPDATE {SCHEMA}.triages SET first_response_due_at = received_at "
        "WHERE first_response_due_at IS NULL"
    )
    op.alter_column("triages", "first_response_due_at", nullable=False, schema=SCHEMA)
    for name in (
        *TEXTS,
        *TIMESTAMPS,
        *JSON_LISTS,
        "confidence",
        "manual_review",
        "skus",
        "escalation_level",
    ):
        op.drop_column("triages", name, schema=SCHEMA)
