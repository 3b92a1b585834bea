"""Schemathesis against all four services with valid credentials, bounded examples.

Every operation of every OpenAPI document is exercised with generated requests: none may answer
5xx, and every response must match its documented status, content type, headers and schema.
"""

import os
import time
from collections import Counter
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
from tests.support.complaints import complaint_body, register_pii
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


def fuzz_operation(
    operation: Any, base_url: str, headers: dict[str, str], known_id: str, statuses: Counter[int]
) -> int:
    """Runs bounded generated cases against one operation; returns how many ran.

    Every other case that names a complaint names one that exists (and that the caller may
    see), so the 200 views are checked against their schema too, not only the 404s.
    """
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
        if case.path_parameters and "complaint_id" in case.path_parameters and calls % 2:
            case.path_parameters["complaint_id"] = known_id
        # Schemathesis fills the documented API-key header with junk; send our own credential.
        for name in list(case.headers or {}):
            if name.lower() in ("x-api-key", "authorization"):
                del case.headers[name]
        response = case.call(base_url=base_url, headers=headers, session=session, timeout=15)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    run()
    return calls


@pytest.fixture(scope="module")
def known_complaint(platform: Platform) -> str:
    """A complaint posted by the fuzzing storefront and seen by all four services."""
    body = complaint_body(3)
    register_pii(*(str(body["customer"].get(key)) for key in ("name", "phone", "email")))
    response = requests.post(
        f"{platform.url('intake')}/v1/complaints",
        json=body,
        headers=credentials("intake"),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    complaint_id: str = response.json()["complaint_id"]
    deadline = time.monotonic() + 60
    for service in SERVICES:
        url = f"{platform.url(service)}/v1/complaints/{complaint_id}"
        while requests.get(url, headers=credentials(service), timeout=10).status_code != 200:
            assert time.monotonic() < deadline, f"{service} never saw the complaint"
            time.sleep(0.2)
    return complaint_id


@pytest.mark.parametrize("service", SERVICES)
def test_generated_requests_get_no_5xx_and_answers_that_match_the_schema(
    platform: Platform, service: str, known_complaint: str
):
    base_url = platform.url(service)
    document = requests.get(f"{base_url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    total = 0
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        total += fuzz_operation(
            operation, base_url, credentials(service), known_complaint, statuses
        )
    print(f"fuzzed {service}: {total} requests, statuses {dict(sorted(statuses.items()))}")
    assert statuses[200] > 2, "the views of an existing complaint were never checked"
