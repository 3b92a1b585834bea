"""A timer worker in its own process, for tests that kill it with SIGKILL mid-batch.

Usage: python -m tests.support.timer_worker_process <sqlalchemy-url> <schema> <handler-delay-s>
"""

import asyncio
import os
import sys

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import create_engine, create_sessionmaker
from shared.timers import Timer, TimerWorker
from tests.support.timers import PROBE_KIND, timer_tables


async def main(url: str, schema: str, delay_s: float) -> None:
    tables = timer_tables(schema)
    engine = create_engine(url, pool_size=2)
    name = f"pid-{os.getpid()}"

    async def record_then_linger(session: AsyncSession, timer: Timer) -> None:
        # The effect is written first and the transaction stays open a while: a kill lands
        # between the effect and the commit most of the time.
        await session.execute(insert(tables.effects).values(timer_id=timer.id, worker=name))
        await asyncio.sleep(delay_s)

    worker = TimerWorker(
        sessionmaker=create_sessionmaker(engine),
        table=tables.timers,
        handlers={PROBE_KIND: record_then_linger},
        batch_size=10,
        poll_interval_s=0.05,
        name=name,
    )
    print("worker running", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
