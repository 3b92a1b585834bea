"""intake: the front door (order, checks, customer view, timeline, flags, erasures, inbox)

Revision ID: intake_0006
Revises: intake_0005_evidence
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.db.outbox_migration import create_inbox, drop_inbox

revision: str = "intake_0006"
down_revision: str | None = "intake_0005_evidence"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "intake"

# One round trip for the duplicate and cap checks: lock the customer, then list their open
# complaints. A VOLATILE plpgsql function takes a fresh snapshot per statement, so the list
# sees a submission of the same customer that committed while this one waited for the lock
# (a single SQL statement's snapshot would predate the lock and miss it).
LOCK_AND_LIST_OPEN_FUNCTION = """
CREATE FUNCTION intake.lock_customer_and_list_open(customer text, open_states text[])
RETURNS TABLE (
    id uuid, complaint_number text, order_number text, target text,
    received_at timestamptz
)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('intake-customer:' || customer, 0));
    RETURN QUERY
        SELECT c.id, c.complaint_number, c.order_number, c.target, c.received_at
        FROM intake.complaints AS c
        WHERE c.customer_id = customer AND c.visible_state = ANY (open_states);
END
$$
"""

NEW_COMPLAINT_COLUMNS = (
    sa.Column("order", JSONB, nullable=True),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("after_sales_reason", sa.Text, nullable=True),
    sa.Column("customer_flags", JSONB, nullable=False, server_default="[]"),
    sa.Column("missing", JSONB, nullable=False, server_default="[]"),
    sa.Column("info_due_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("rejection", JSONB, nullable=True),
    sa.Column("notes", JSONB, nullable=False, server_default="[]"),
    sa.Column("visible_state", sa.Text, nullable=False, server_default="pending_acceptance"),
    sa.Column(
        "state_changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("next_step", sa.Text, nullable=True),
    sa.Column("next_step_due_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
)


def upgrade() -> None:
    for column in NEW_COMPLAINT_COLUMNS:
        op.add_column("complaints", column, schema=SCHEMA)
    # Complaints from before this revision: their order number and delivery move into `order`,
    # and their view starts where it stood, the first response promised by respond_by.
    op.execute(
        """
        UPDATE intake.complaints SET
            "order" = CASE WHEN order_number IS NULL THEN NULL ELSE jsonb_strip_nulls(
                jsonb_build_object('number', order_number, 'delivered_at', delivered_at)) END,
            state_changed_at = received_at,
            next_step = 'first_response',
            next_step_due_at = respond_by
        """
    )
    op.create_table(
        "timeline",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("complaint_id", sa.Uuid, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("summary_zh", sa.Text, nullable=False),
        sa.Column("summary_en", sa.Text, nullable=False),
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("id", name="pk_timeline"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_timeline_complaint_id_at", "timeline", ["complaint_id", "at"], schema=SCHEMA
    )
    op.create_table(
        "account_flags",
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("flag", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flagged_by", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "flag", name="pk_account_flags"),
        schema=SCHEMA,
    )
    op.create_table(
        "erasures",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("complaints_redacted", sa.Integer, nullable=False),
        sa.Column("evidence_deleted", sa.Integer, nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_erasures"),
        schema=SCHEMA,
    )
    # Intake now consumes the other services' events for the customer's view.
    create_inbox(SCHEMA)
    op.execute(LOCK_AND_LIST_OPEN_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION intake.lock_customer_and_list_open(text, text[])")
    drop_inbox(SCHEMA)
    op.drop_table("erasures", schema=SCHEMA)
    op.drop_table("account_flags", schema=SCHEMA)
    op.drop_index("ix_timeline_complaint_id_at", table_name="timeline", schema=SCHEMA)
    op.drop_table("timeline", schema=SCHEMA)
    for column in reversed(NEW_COMPLAINT_COLUMNS):
        op.drop_column("complaints", column.name, schema=SCHEMA)
