"""intake: complaint numbers from per-month sequences; Idempotency-Keys scoped per caller

Revision ID: intake_0003
Revises: intake_0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "intake_0003"
down_revision: str | None = "intake_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "intake"

# The month's sequence is made on first use (the first complaint of a month); a concurrent
# first use that loses the race to create it just uses the winner's. nextval() takes no
# row lock, so numbering never serialises intake the way the old counter row did.
NEXT_NUMBER_FUNCTION = """
CREATE FUNCTION intake.next_complaint_number(period text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    sequence_name text;
    n bigint;
BEGIN
    IF period !~ '^[0-9]{6}$' THEN
        RAISE EXCEPTION 'complaint number period must be YYYYMM, got %', period;
    END IF;
    sequence_name := 'intake.complaint_number_' || period;
    IF to_regclass(sequence_name) IS NULL THEN
        BEGIN
            EXECUTE 'CREATE SEQUENCE IF NOT EXISTS ' || sequence_name;
        EXCEPTION WHEN unique_violation OR duplicate_table THEN
            NULL;
        END;
    END IF;
    n := nextval(sequence_name);
    RETURN period || '-' || CASE WHEN n < 1000000 THEN lpad(n::text, 6, '0') ELSE n::text END;
END
$$
"""


def upgrade() -> None:
    op.execute(NEXT_NUMBER_FUNCTION)
    # Carry each month's counter over: its sequence continues after the last number given.
    op.execute(
        """
        DO $$
        DECLARE r record;
        BEGIN
            FOR r IN SELECT period, last_value FROM intake.complaint_number_counters LOOP
                EXECUTE format(
                    'CREATE SEQUENCE intake.%I START WITH %s',
                    'complaint_number_' || r.period,
                    r.last_value + 1
                );
            END LOOP;
        END
        $$
        """
    )
    op.drop_table("complaint_number_counters", schema=SCHEMA)

    op.add_column(
        "idempotency_keys",
        sa.Column("caller", sa.Text, nullable=False, server_default="anonymous"),
        schema=SCHEMA,
    )
    op.alter_column("idempotency_keys", "caller", server_default=None, schema=SCHEMA)
    op.drop_constraint("pk_idempotency_keys", "idempotency_keys", schema=SCHEMA)
    op.create_primary_key(
        "pk_idempotency_keys", "idempotency_keys", ["caller", "key"], schema=SCHEMA
    )


def downgrade() -> None:
    op.execute("DELETE FROM intake.idempotency_keys WHERE caller <> 'anonymous'")
    op.drop_constraint("pk_idempotency_keys", "idempotency_keys", schema=SCHEMA)
    op.create_primary_key("pk_idempotency_keys", "idempotency_keys", ["key"], schema=SCHEMA)
    op.drop_column("idempotency_keys", "caller", schema=SCHEMA)

    op.create_table(
        "complaint_number_counters",
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("last_value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("period", name="pk_complaint_number_counters"),
        schema=SCHEMA,
    )
    op.execute(
        """
        INSERT INTO intake.complaint_number_counters (period, last_value)
        SELECT substr(sequencename, length('complaint_number_') + 1), coalesce(last_value, 0)
        FROM pg_sequences
        WHERE schemaname = 'intake' AND sequencename ~ '^complaint_number_[0-9]{6}$'
        """
    )
    op.execute(
        """
        DO $$
        DECLARE r record;
        BEGIN
            FOR r IN SELECT sequencename FROM pg_sequences
                     WHERE schemaname = 'intake' AND sequencename ~ '^complaint_number_[0-9]{6}$'
            LOOP
                EXECUTE format('DROP SEQUENCE intake.%I', r.sequencename);
            END LOOP;
        END
        $$
        """
    )
    op.execute("DROP FUNCTION intake.next_complaint_number(text)")
