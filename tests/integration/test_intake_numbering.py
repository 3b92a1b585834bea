"""Complaint numbers from per-month Postgres sequences, on the real database."""

import asyncio
import uuid

import asyncpg
import pytest

from services.catalog import BY_NAME
from tests.support.stack import StackUnderTest

pytestmark = pytest.mark.stack


def intake_dsn(stack: StackUnderTest) -> str:
    """asyncpg DSN of the intake role: the function runs with the service's own rights."""
    url = stack.config.service_database_url(BY_NAME["intake"])
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def unused_period() -> str:
    """A month no other test numbers in (years before the platform existed)."""
    return f"19{uuid.uuid4().int % 100:02d}{uuid.uuid4().int % 12 + 1:02d}"


async def next_number(dsn: str, period: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval("SELECT intake.next_complaint_number($1)", period))
    finally:
        await conn.close()


class TestNextComplaintNumber:
    async def test_a_new_month_starts_at_one_with_six_digits(self, stack):
        period = unused_period()
        dsn = intake_dsn(stack)
        first, second = await next_number(dsn, period), await next_number(dsn, period)
        assert (first, second) == (f"{period}-000001", f"{period}-000002")

    async def test_keeps_growing_past_a_million(self, stack):
        period = unused_period()
        dsn = intake_dsn(stack)
        await next_number(dsn, period)  # makes the month's sequence
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"SELECT setval('intake.complaint_number_{period}', 999999)")
        finally:
            await conn.close()
        assert await next_number(dsn, period) == f"{period}-1000000"

    async def test_a_period_that_is_not_a_month_is_refused(self, stack):
        with pytest.raises(asyncpg.RaiseError, match="must be YYYYMM"):
            await next_number(intake_dsn(stack), "2024-5'; DROP TABLE x; --")

    async def test_concurrent_first_use_of_a_month_gives_unique_increasing_numbers(self, stack):
        period = unused_period()
        dsn = intake_dsn(stack)
        connections = [await asyncpg.connect(dsn) for _ in range(16)]
        try:
            # Each takes 4 numbers in its own transaction, all starting at once on a month
            # whose sequence does not exist yet: the creators race.
            async def take(conn: asyncpg.Connection) -> list[str]:
                async with conn.transaction():
                    return [
                        await conn.fetchval("SELECT intake.next_complaint_number($1)", period)
                        for _ in range(4)
                    ]

            results = await asyncio.gather(*(take(conn) for conn in connections))
        finally:
            for conn in connections:
                await conn.close()
        numbers = [number for taken in results for number in taken]
        assert len(set(numbers)) == 64
        for taken in results:
            assert taken == sorted(taken), "increasing within a month"
        assert sorted(numbers) == [f"{period}-{n:06d}" for n in range(1, 65)]
