"""The faults tier: the four services on a private Postgres and Kafka that tests break."""

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
import pytest

from services.catalog import BY_NAME
from tests.support.platform import Platform, running_platform, service_test_env
from tests.support.private_infra import PrivateInfrastructure, private_infrastructure
from tests.support.stack import StackUnderTest, create_test_stack

FAULTS_PORT_OFFSET = 23_000  # 31001-31004: beside `make up` and the e2e tier
# Short enough that every outage below outlasts it: the case that wedged producers for good.
REQUEST_TIMEOUT_MS = 5_000


@dataclass
class Faulty:
    """The platform under test and the infrastructure the tests may break."""

    infra: PrivateInfrastructure
    stack: StackUnderTest
    platform: Platform


def faults_env(name: str) -> dict[str, str]:
    """Test settings plus a short Kafka request timeout and outbox readiness limit."""
    prefix = BY_NAME[name].env_prefix
    return {
        **service_test_env(name),
        f"{prefix}KAFKA_REQUEST_TIMEOUT_MS": str(REQUEST_TIMEOUT_MS),
        f"{prefix}OUTBOX_READY_MAX_AGE_SECONDS": "5",
    }


@pytest.fixture(scope="module")
def faulty() -> Iterator[Faulty]:
    """Private Postgres + Kafka, the run's database and topics on them, the four services."""
    with private_infrastructure("faults") as infra:
        stack = create_test_stack(infra.config)
        with running_platform(
            stack, port_offset=FAULTS_PORT_OFFSET, label="faults", service_env=faults_env
        ) as platform:
            yield Faulty(infra=infra, stack=stack, platform=platform)


@pytest.fixture
async def faults_db(faulty: Faulty) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to the private cluster's test database (reconnect after faults)."""
    conn = await asyncpg.connect(faulty.stack.admin_dsn())
    try:
        yield conn
    finally:
        await conn.close()
