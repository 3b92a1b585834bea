"""Migration operations for the timers table every service owns."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


def create_timers(schema: str) -> None:
    """Creates `<schema>.timers` as `shared.timers.timers_table` defines it."""
    op.create_table(
        "timers",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "payload", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'pending'")),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_timers"),
        sa.CheckConstraint(
            "status IN ('pending', 'fired', 'cancelled', 'failed')", name="ck_timers_status"
        ),
        schema=schema,
    )
    op.create_index(
        "ix_timers_pending_due_at",
        "timers",
        ["due_at"],
        schema=schema,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "uq_timers_pending_kind_key",
        "timers",
        ["kind", "key"],
        unique=True,
        schema=schema,
        postgresql_where=sa.text("status = 'pending'"),
    )


def drop_timers(schema: str) -> None:
    """Drops `<schema>.timers`."""
    op.drop_index("uq_timers_pending_kind_key", table_name="timers", schema=schema)
    op.drop_index("ix_timers_pending_due_at", table_name="timers", schema=schema)
    op.drop_table("timers", schema=schema)
