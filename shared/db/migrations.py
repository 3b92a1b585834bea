"""Alembic plumbing shared by every service: one env function, programmatic upgrade."""

import asyncio
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


def alembic_config(package: str, database_url: str) -> Config:
    """An Alembic config for `<package>/migrations` against a database URL."""
    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    config.set_main_option("sqlalchemy.url", database_url)
    config.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d_%%(rev)s_%%(slug)s")
    return config


def upgrade(package: str, database_url: str, revision: str = "head") -> None:
    """Runs a service's migrations up to `revision` (blocking; call via a thread from async)."""
    command.upgrade(alembic_config(package, database_url), revision)


def downgrade(package: str, database_url: str, revision: str = "base") -> None:
    """Reverts a service's migrations down to `revision`."""
    command.downgrade(alembic_config(package, database_url), revision)


def run_env(metadata: MetaData) -> None:
    """The body of every service's migrations/env.py: only its own schema, versioned inside it."""
    schema = metadata.schema
    if schema is None:
        raise RuntimeError("service metadata must name its schema")
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set")

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ == "table":
            return bool(getattr(obj, "schema", None) == schema)
        return True

    options: dict[str, Any] = {
        "target_metadata": metadata,
        "version_table_schema": schema,
        "include_schemas": True,
        "include_object": include_object,
    }

    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return

    def run(connection: Connection) -> None:
        connection.execute(text(f'SET search_path TO "{schema}"'))
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()

    async def online() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(run)
        finally:
            await engine.dispose()

    asyncio.run(online())
