"""intake: evidence files (photos, videos, screenshots, receipts, chat logs) and their scope

Revision ID: intake_0005_evidence
Revises: intake_0004_access
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "intake_0005_evidence"
down_revision: str | None = "intake_0004_access"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "intake"


def upgrade() -> None:
    op.create_table(
        "evidence",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("storefront_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("complaint_id", sa.Uuid, nullable=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("media_type", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("storage_key", sa.Text, nullable=False),
        sa.Column("original_filename", sa.Text, nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_evidence"),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            [f"{SCHEMA}.complaints.id"],
            name="fk_evidence_complaint_id_complaints",
        ),
        sa.UniqueConstraint("storage_key", name="uq_evidence_storage_key"),
        sa.CheckConstraint("size_bytes > 0", name="ck_evidence_size_positive"),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="ck_evidence_sha256_hex"),
        schema=SCHEMA,
    )
    op.create_index("ix_evidence_complaint_id", "evidence", ["complaint_id"], schema=SCHEMA)
    op.create_index(
        "ix_evidence_customer_id_storefront_id",
        "evidence",
        ["customer_id", "storefront_id"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_evidence_unattached_uploaded_at",
        "evidence",
        ["uploaded_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("complaint_id IS NULL"),
    )


def downgrade() -> None:
    # The rows go; files in the evidence storage stay (delete them with the storage's tools).
    op.drop_index("ix_evidence_unattached_uploaded_at", table_name="evidence", schema=SCHEMA)
    op.drop_index("ix_evidence_customer_id_storefront_id", table_name="evidence", schema=SCHEMA)
    op.drop_index("ix_evidence_complaint_id", table_name="evidence", schema=SCHEMA)
    op.drop_table("evidence", schema=SCHEMA)
