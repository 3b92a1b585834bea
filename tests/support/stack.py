"""The real stack for tests: reuse a running Postgres + Kafka, or start them with our scripts."""

import asyncio
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg

from services.catalog import CATALOG
from services.environment import StackConfig
from services.provision import drop_database, ensure_platform_topics, provision
from shared.db.migrations import upgrade
from shared.events.topics import all_topic_names
from shared.messaging.kafka import delete_topics
from tests.support.auth import seed_test_principals

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL = REPO_ROOT / "deploy" / "local"


@dataclass(frozen=True)
class StackUnderTest:
    """A test run's own database and topic namespace on the shared broker and server."""

    config: StackConfig
    database: str
    run_id: str

    def admin_dsn(self) -> str:
        """Superuser DSN of the test database (assertions and throwaway schemas)."""
        return self.config.admin_dsn(self.database)

    def admin_sqlalchemy_url(self) -> str:
        """Superuser SQLAlchemy URL of the test database."""
        return self.admin_dsn().replace("postgresql://", "postgresql+asyncpg://", 1)


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


async def _admin_login_works(config: StackConfig) -> bool:
    try:
        conn = await asyncpg.connect(config.admin_dsn("postgres"), timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def ensure_infrastructure(config: StackConfig) -> list[str]:
    """Starts Postgres and/or Kafka with deploy/local scripts unless they already run.

    Returns the scripts it started, so the caller can stop exactly those.
    """
    started = []
    if not asyncio.run(_admin_login_works(config)):
        subprocess.run(["bash", str(LOCAL / "postgres.sh"), "up"], check=True)
        started.append("postgres.sh")
    host, _, port = config.kafka_bootstrap.rpartition(":")
    if not _port_open(host, int(port)):
        subprocess.run(["bash", str(LOCAL / "kafka.sh"), "up"], check=True)
        started.append("kafka.sh")
    return started


def stop_infrastructure(scripts: list[str]) -> None:
    """Stops what `ensure_infrastructure` started."""
    for script in reversed(scripts):
        subprocess.run(["bash", str(LOCAL / script), "down"], check=False)


def create_test_stack(base: StackConfig) -> StackUnderTest:
    """Makes a fresh database (schemas built by the migrations) and a topic prefix for this run."""
    run_id = uuid.uuid4().hex[:8]
    database = f"complaints_test_{run_id}"
    config = replace(base, pg_database=database, topic_prefix=f"test-{run_id}.")
    asyncio.run(provision(config))
    for entry in CATALOG:
        upgrade(entry.package, config.service_database_url(entry))
    asyncio.run(seed_test_principals(config.admin_dsn(database)))
    asyncio.run(ensure_platform_topics(config))
    return StackUnderTest(config=config, database=database, run_id=run_id)


def destroy_test_stack(stack: StackUnderTest) -> None:
    """Drops the run's database and topics."""
    asyncio.run(
        delete_topics(stack.config.kafka_bootstrap, all_topic_names(stack.config.topic_prefix))
    )
    asyncio.run(drop_database(stack.config, stack.database))


@contextmanager
def stack_under_test() -> Iterator[StackUnderTest]:
    """Infrastructure up (or reused), a private database and topics, then cleanup."""
    base = StackConfig.from_env()
    started = [] if os.environ.get("COMPLAINTS_TEST_NO_START") else ensure_infrastructure(base)
    try:
        stack = create_test_stack(base)
    except BaseException:
        # What this run started must not outlive a failed setup.
        stop_infrastructure(started)
        raise
    try:
        yield stack
    finally:
        if not os.environ.get("COMPLAINTS_TEST_KEEP"):
            destroy_test_stack(stack)
        stop_infrastructure(started)
