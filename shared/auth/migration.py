"""Migration operations for the access tables every service owns (shared.auth.tables)."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


def create_access_tables(schema: str) -> None:
    """Creates `<schema>.api_keys` and `<schema>.users`."""
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("secret_sha256", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("merchant_id", sa.Text, nullable=True),
        sa.Column("storefront_id", sa.Text, nullable=True),
        sa.Column(
            "teams", postgresql.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'")
        ),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
        sa.CheckConstraint(
            "role IN ('storefront', 'merchant') "
            "AND (role <> 'merchant' OR merchant_id IS NOT NULL) "
            "AND (role <> 'storefront' OR storefront_id IS NOT NULL)",
            name="ck_api_keys_scope",
        ),
        schema=schema,
    )
    op.create_table(
        "users",
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column(
            "teams", postgresql.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'")
        ),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_users"),
        sa.CheckConstraint("role IN ('agent', 'supervisor', 'admin')", name="ck_users_role"),
        schema=schema,
    )


def drop_access_tables(schema: str) -> None:
    """Drops what create_access_tables made."""
    op.drop_table("users", schema=schema)
    op.drop_table("api_keys", schema=schema)
