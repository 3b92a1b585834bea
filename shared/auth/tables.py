"""The principals each service keeps in its own schema: API keys and people."""

from sqlalchemy import (
    ARRAY,
    Boolean,
    Column,
    DateTime,
    MetaData,
    Table,
    Text,
    false,
    text,
)


def access_tables(metadata: MetaData) -> tuple[Table, Table]:
    """`api_keys` and `users` on a schema's metadata."""
    api_keys = Table(
        "api_keys",
        metadata,
        Column("key_id", Text, primary_key=True),
        Column("secret_sha256", Text, nullable=False),
        Column("role", Text, nullable=False),
        Column("merchant_id", Text, nullable=True),
        Column("storefront_id", Text, nullable=True),
        Column("teams", ARRAY(Text), nullable=False, server_default=text("'{}'")),
        Column("name", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("revoked_at", DateTime(timezone=True), nullable=True),
    )
    users = Table(
        "users",
        metadata,
        Column("username", Text, primary_key=True),
        Column("password_hash", Text, nullable=False),
        Column("role", Text, nullable=False),
        Column("teams", ARRAY(Text), nullable=False, server_default=text("'{}'")),
        Column("disabled", Boolean, nullable=False, server_default=false()),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    return api_keys, users


def schema_access_tables(schema: str) -> tuple[Table, Table]:
    """The access tables of one schema, for code that has no service's metadata at hand."""
    return access_tables(MetaData(schema=schema))
