"""Fixtures shared by every test tier. Tests that need the real stack ask for `stack`."""

from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from tests.support.auth import admin_headers
from tests.support.platform import Platform, running_platform
from tests.support.stack import StackUnderTest, stack_under_test


@pytest.fixture(scope="session")
def stack() -> Iterator[StackUnderTest]:
    """Real Postgres + Kafka (reused or started), a private database and topic prefix per run."""
    with stack_under_test() as running:
        yield running


@pytest.fixture(scope="session")
def platform(stack: StackUnderTest) -> Iterator[Platform]:
    """The four services as separate processes, shared by the e2e and chaos tiers."""
    with running_platform(stack) as running:
        yield running


@pytest.fixture
async def admin_db(stack: StackUnderTest) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to the run's database, for assertions across schemas."""
    conn = await asyncpg.connect(stack.admin_dsn())
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for talking to the services, signed in as an admin (sees everything)."""
    async with httpx.AsyncClient(timeout=10, headers=admin_headers()) as client:
        yield client
