"""Database helpers: naming convention, engine and session factories, the commit edge."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.db.hooks import install_after_commit_hooks

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_metadata(schema: str) -> MetaData:
    """Builds the MetaData of one service's schema with the project's naming convention."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def create_engine(url: str, *, pool_size: int = 10, application_name: str = "") -> AsyncEngine:
    """Creates an asyncpg engine; the role in the URL decides which schema it may touch."""
    connect_args: dict[str, object] = {}
    if application_name:
        connect_args["server_settings"] = {"application_name": application_name}
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args=connect_args,
        # Parameters are customer data (names, phones, emails): an error message or a log
        # line must never render them, so a failed statement shows its SQL only.
        hide_parameters=True,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Creates the session factory; objects stay readable after commit."""
    install_after_commit_hooks()
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """The commit edge: commits when the block ends cleanly, rolls back on any error."""
    async with sessionmaker() as session, session.begin():
        yield session
