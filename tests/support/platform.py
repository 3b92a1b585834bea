"""The four services as real processes against the run's database and topics."""

import json
import os
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from services.catalog import BY_NAME, CATALOG
from services.launcher import ServiceProcess
from shared.auth.principal import Role
from tests.support.auth import auth_test_env
from tests.support.stack import REPO_ROOT, StackUnderTest

TEST_PORT_OFFSET = 10_000  # 18001-18004: beside a `make up` on 8001-8004
# Where this test session's intake processes keep evidence files (tests look inside).
TEST_EVIDENCE_DIRECTORY = REPO_ROOT / ".run" / "test-evidence" / str(os.getpid())


@dataclass
class Platform:
    """Running services, by name."""

    stack: StackUnderTest
    processes: dict[str, ServiceProcess]

    def url(self, name: str) -> str:
        """Base URL of a service."""
        return self.processes[name].base_url

    def kill(self, name: str) -> None:
        """kill -9 one service."""
        self.processes[name].kill()

    def restart(self, name: str) -> None:
        """Starts a stopped or killed service again and waits until it is ready."""
        process = self.processes[name]
        process.start()
        process.wait_ready(90)

    def logs(self, name: str) -> str:
        """Everything a service wrote."""
        return self.processes[name].log_path.read_text(errors="replace")


# The suite's complaints share a handful of customers and merchants (complaint_body's `n`), so
# triage's counting rules would make most of them repeat or group complaints and raise earlier
# ones as the suite goes on. Off here; tests/e2e/test_triage_flow.py runs them on a platform
# of its own.
TRIAGE_COUNTING_RULES_OFF = {
    "TRIAGE_GROUP_THRESHOLD": "1000000",
    "TRIAGE_REPEAT_THRESHOLD": "1000000",
}
# Intake's cap on open complaints per customer on the test platform: low enough for a test to
# reach it quickly, high enough that the suite's few shared customers never do.
TEST_OPEN_COMPLAINTS_CAP = 20


# Resolution's merchant verification deadline and auto-close, in seconds on the test platform,
# so tests/e2e/test_resolution_flow.py sees them pass (and survive kill -9) within a test.
RESOLUTION_SHORT_DEADLINES = {
    "RESOLUTION_VERIFICATION_RESPONSE_SECONDS": "10",
    "RESOLUTION_AUTO_CLOSE_AFTER_SECONDS": "6",
    # The authorization matrix walks resolution's many routes as every caller in one burst
    # (merchants and bad credentials too): its limits are roomy. The protections themselves
    # are tested against triage and intake, which keep the production limits for merchants.
    "AUTH_RATE_LIMITS": json.dumps(
        {role.value: {"per_second": 10_000, "burst": 10_000} for role in Role}
    ),
    "AUTH_FAILED_AUTH_LIMIT": json.dumps({"per_second": 10_000, "burst": 10_000}),
}


# The matrix registers merchants' webhook endpoints on loopback (tests/e2e/test_access.py).
NOTIFICATION_LOOPBACK_WEBHOOKS = {"NOTIFICATION_WEBHOOK_ALLOW_INTERNAL_URLS": "true"}


def service_test_env(name: str) -> dict[str, str]:
    """Settings that make failure tests quicker without changing behaviour."""
    prefix = BY_NAME[name].env_prefix
    evidence = {"INTAKE_EVIDENCE_LOCAL_DIRECTORY": str(TEST_EVIDENCE_DIRECTORY)}
    return {
        **auth_test_env(),
        **(evidence if name == "intake" else {}),
        **(TRIAGE_COUNTING_RULES_OFF if name == "triage" else {}),
        **(NOTIFICATION_LOOPBACK_WEBHOOKS if name == "notification" else {}),
        **(RESOLUTION_SHORT_DEADLINES if name == "resolution" else {}),
        f"{prefix}ENVIRONMENT": "test",
        f"{prefix}MAX_OPEN_COMPLAINTS_PER_CUSTOMER": str(TEST_OPEN_COMPLAINTS_CAP),
        # A killed member's partitions move after the session timeout: keep it short.
        f"{prefix}KAFKA_SESSION_TIMEOUT_MS": "6000",
        f"{prefix}DB_POOL_SIZE": "5",
    }


@contextmanager
def running_platform(
    stack: StackUnderTest,
    *,
    port_offset: int = TEST_PORT_OFFSET,
    label: str = "test",
    services: Collection[str] | None = None,
    service_env: Callable[[str], dict[str, str]] = service_test_env,
) -> Iterator[Platform]:
    """Starts the services (all four unless named), yields them, stops them gracefully."""
    config = replace(stack.config, port_offset=port_offset)
    log_dir = REPO_ROOT / ".run" / f"{label}-logs" / stack.run_id
    processes = {
        entry.name: ServiceProcess(
            entry, config, log_dir=log_dir, extra_env=service_env(entry.name)
        )
        for entry in CATALOG
        if services is None or entry.name in services
    }
    try:
        for process in processes.values():
            process.start()
        for process in processes.values():
            process.wait_ready(90)
        yield Platform(stack=stack, processes=processes)
    finally:
        for process in processes.values():
            process.stop()
