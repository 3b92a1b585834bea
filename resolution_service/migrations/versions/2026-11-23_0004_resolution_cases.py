"""resolution: the case lifecycle (state, assignment, verification, offers, closure), the
complaint's facts from intake, the timeline, consents, task reports and the liability ledger

Revision ID: resolution_0004_cases
Revises: resolution_0003_access
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision: str = "resolution_0004_cases"
down_revision: str | None = "resolution_0003_access"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "resolution"
TZ = sa.DateTime(timezone=True)
MONEY = sa.Numeric(12, 2)

CASE_COLUMNS = (
    sa.Column("state", sa.Text, nullable=False, server_default=sa.text("'open'")),
    sa.Column("subcategory", sa.Text, nullable=True),
    sa.Column("responsibility_hypothesis", sa.Text, nullable=True),
    sa.Column("responsibility", sa.Text, nullable=True),
    sa.Column(
        "responsibility_reasons", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")
    ),
    sa.Column("assignee_id", sa.Text, nullable=True),
    sa.Column("assigned_at", TZ, nullable=True),
    sa.Column("verification_requested_at", TZ, nullable=True),
    sa.Column("verification_due_at", TZ, nullable=True),
    sa.Column("verification", JSONB, nullable=True),
    sa.Column("proposal", JSONB, nullable=True),
    sa.Column("proposed_by", sa.Text, nullable=True),
    sa.Column("negotiation_rounds", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("mediation_held", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("demanded_compensation", MONEY, nullable=True),
    sa.Column("referral", JSONB, nullable=True),
    sa.Column("accepted_offer", JSONB, nullable=True),
    sa.Column("execution_started_at", TZ, nullable=True),
    sa.Column("decided_at", TZ, nullable=True),
    sa.Column("decided_by", sa.Text, nullable=True),
    sa.Column("auto_close_at", TZ, nullable=True),
    sa.Column("appeal_window_ends_at", TZ, nullable=True),
    sa.Column("appealed_before", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("reviewer_id", sa.Text, nullable=True),
)


def upgrade() -> None:
    for column in CASE_COLUMNS:
        op.add_column("cases", column, schema=SCHEMA)
    op.create_index("ix_cases_team_state", "cases", ["team", "state"], schema=SCHEMA)
    op.create_index("ix_cases_assignee_id_state", "cases", ["assignee_id", "state"], schema=SCHEMA)
    op.create_table(
        "complaint_facts",
        sa.Column("complaint_id", sa.Uuid, nullable=False),
        sa.Column("storefront_id", sa.Text, nullable=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("customer_flags", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("order_amount", MONEY, nullable=True),
        sa.Column("currency", sa.Text, nullable=False, server_default=sa.text("'CNY'")),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.Column("demands", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("after_sales_reason", sa.Text, nullable=True),
        sa.Column(
            "returnable_without_reason", sa.Boolean, nullable=False, server_default=sa.true()
        ),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("erased_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("complaint_id", name="pk_complaint_facts"),
        schema=SCHEMA,
    )
    op.create_table(
        "case_timeline",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("case_id", sa.Uuid, nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("evidence_refs", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.PrimaryKeyConstraint("id", name="pk_case_timeline"),
        sa.ForeignKeyConstraint(
            ["case_id"], [f"{SCHEMA}.cases.id"], name="fk_case_timeline_case_id_cases"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_case_timeline_case_id_at", "case_timeline", ["case_id", "at"], schema=SCHEMA
    )
    op.create_table(
        "consents",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("case_id", sa.Uuid, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("consented_at", TZ, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("offer", sa.Text, nullable=False),
        sa.Column("offer_hash", sa.Text, nullable=False),
        sa.Column("summary", JSONB, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_consents"),
        sa.ForeignKeyConstraint(
            ["case_id"], [f"{SCHEMA}.cases.id"], name="fk_consents_case_id_cases"
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_consents_case_id", "consents", ["case_id"], schema=SCHEMA)
    op.create_table(
        "task_reports",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("case_id", sa.Uuid, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("task_key", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("facts", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_task_reports"),
        sa.UniqueConstraint("case_id", "seq", name="uq_task_reports_case_id_seq"),
        sa.ForeignKeyConstraint(
            ["case_id"], [f"{SCHEMA}.cases.id"], name="fk_task_reports_case_id_cases"
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("case_id", sa.Uuid, nullable=False),
        sa.Column("merchant_id", sa.Text, nullable=False),
        sa.Column("party", sa.Text, nullable=False),
        sa.Column("party_id", sa.Text, nullable=True),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("remedy", sa.Text, nullable=False),
        sa.Column("cost", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_entries"),
        sa.ForeignKeyConstraint(
            ["case_id"], [f"{SCHEMA}.cases.id"], name="fk_ledger_entries_case_id_cases"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_ledger_entries_party_party_id", "ledger_entries", ["party", "party_id"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_party_party_id", table_name="ledger_entries", schema=SCHEMA)
    op.drop_table("ledger_entries", schema=SCHEMA)
    op.drop_table("task_reports", schema=SCHEMA)
    op.drop_index("ix_consents_case_id", table_name="consents", schema=SCHEMA)
    op.drop_table("consents", schema=SCHEMA)
    op.drop_index("ix_case_timeline_case_id_at", table_name="case_timeline", schema=SCHEMA)
    op.drop_table("case_timeline", schema=SCHEMA)
    op.drop_table("complaint_facts", schema=SCHEMA)
    op.drop_index("ix_cases_assignee_id_state", table_name="cases", schema=SCHEMA)
    op.drop_index("ix_cases_team_state", table_name="cases", schema=SCHEMA)
    for column in reversed(CASE_COLUMNS):
        op.drop_column("cases", column.name, schema=SCHEMA)
