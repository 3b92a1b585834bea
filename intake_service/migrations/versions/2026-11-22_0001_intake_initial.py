"""intake: complaints, numbering, idempotency keys, outbox

Revision ID: intake_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.db.outbox_migration import create_outbox, drop_outbox

revision: str = "intake_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "intake"


def upgrade() -> None:
    op.create_table(
        "complaints",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("complaint_number", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("contact", postgresql.JSONB, nullable=False),
        sa.Column("preferred_contact_channel", sa.Text, nullable=False),
        sa.Column("order_number", sa.Text, nullable=True),
        sa.Column("merchant_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("category_hint", sa.Text, nullable=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("demands", postgresql.JSONB, nullable=False),
        sa.Column("product", postgresql.JSONB, nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("respond_by", sa.DateTime(timezone=True), nullable=False),
        sa.Column("correlation_id", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_complaints"),
        sa.UniqueConstraint("complaint_number", name="uq_complaints_complaint_number"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_complaints_customer_id_received_at",
        "complaints",
        ["customer_id", "received_at"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_complaints_merchant_id_received_at",
        "complaints",
        ["merchant_id", "received_at"],
        schema=SCHEMA,
    )
    op.create_table(
        "complaint_number_counters",
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("last_value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("period", name="pk_complaint_number_counters"),
        schema=SCHEMA,
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("request_fingerprint", sa.Text, nullable=False),
        sa.Column("response_status", sa.Integer, nullable=True),
        sa.Column("response_body", postgresql.JSONB, nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_idempotency_keys"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"], schema=SCHEMA
    )
    create_outbox(SCHEMA)


def downgrade() -> None:
    drop_outbox(SCHEMA)
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys", schema=SCHEMA)
    op.drop_table("idempotency_keys", schema=SCHEMA)
    op.drop_table("complaint_number_counters", schema=SCHEMA)
    op.drop_index("ix_complaints_merchant_id_received_at", table_name="complaints", schema=SCHEMA)
    op.drop_index("ix_complaints_customer_id_received_at", table_name="complaints", schema=SCHEMA)
    op.drop_table("complaints", schema=SCHEMA)
