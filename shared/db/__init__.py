"""Database helpers: naming convention, engine and session factories, the commit edge."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
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


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def default_ssl_mode(url: str) -> str:
    """'disable' for a database on this machine, else 'prefer' (asyncpg's own default).

    TLS to a loopback server only costs CPU on every round trip; across a network it is
    what keeps customer data private, and production settings can demand 'require'.
    """
    host = make_url(url).host or ""
    return "disable" if host in LOOPBACK_HOSTS or host.startswith("/") else "prefer"


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    application_name: str = "",
    ssl: str | None = None,
    pool_timeout_s: float = 10.0,
) -> AsyncEngine:
    """Creates an asyncpg engine; the role in the URL decides which schema it may touch."""
    connect_args: dict[str, object] = {"ssl": ssl or default_ssl_mode(url)}
    if application_name:
        connect_args["server_settings"] = {"application_name": application_name}
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout_s,
        # No pre-ping (a round trip per checkout): a connection that died with the server
        # fails its first statement, SQLAlchemy then recycles the whole pool, and callers
        # treat that failure as an outage (shared.db.errors): HTTP 503, consumers retry.
        pool_pre_ping=False,
        connect_args=connect_args,
        # Parameters are customer data (names, phones, emails): an error message or a log
        # line must never render them, so a failed statement shows its SQL only.
        hide_parameters=True,
        # JSON and JSONB values (event payloads, message contexts, timeline details) go through
        # orjson: several per event on every service's hot path, ~10x the standard library.
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
    )


def _json_dumps(value: object) -> str:
    # Non-string keys become strings, as json.dumps makes them.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


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
