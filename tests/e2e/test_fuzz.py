"""Schemathesis against all four services with valid credentials, bounded examples.

Every operation of every OpenAPI document is exercised with generated requests: none may answer
5xx, and every response must match its documented status, content type, headers and schema.
"""

import os
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.auth import STOREFRONT, bearer
from tests.support.platform import Platform

pytestmark = [pytest.mark.stack, pytest.mark.e2e]

SERVICES = ("intake", "triage", "resolution", "notification")
MAX_EXAMPLES = int(os.environ.get("COMPLAINTS_FUZZ_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Prometheus text is not JSON; it is covered by the e2e tests.
SKIPPED = {("GET", "/metrics")}


def credentials(service: str) -> dict[str, str]:
    """The caller fuzzing a service: intake's writer is a storefront; elsewhere an admin."""
    return STOREFRONT.headers() if service == "intake" else bearer("test-admin")


def fuzz_operation(operation: Any, base_url: str, headers: dict[str, str]) -> int:
    """Runs bounded generated cases against one operation; returns how many ran."""
    calls = 0
    session = requests.Session()

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        nonlocal calls
        calls += 1
        # Schemathesis fills the documented API-key header with junk; send our own credential.
        for name in list(case.headers or {}):
            if name.lower() in ("x-api-key", "authorization"):
                del case.headers[name]
        response = case.call(base_url=base_url, headers=headers, session=session, timeout=15)
        case.validate_response(response, checks=CHECKS)

    run()
    return calls


@pytest.mark.parametrize("service", SERVICES)
def test_generated_requests_get_no_5xx_and_answers_that_match_the_schema(
    platform: Platform, service: str
):
    base_url = platform.url(service)
    document = requests.get(f"{base_url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    total = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        total += fuzz_operation(operation, base_url, credentials(service))
    print(f"fuzzed {service}: {total} requests")
    assert total > 0
