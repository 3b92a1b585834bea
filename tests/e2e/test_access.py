"""Access control on the running services: the authorization matrix and the protections.

The matrix is generated from the four OpenAPI documents: every operation, every caller (each
role in scope and out of it) against two complaints with different owners, plus anonymous.
`EXPECTED_ROLES` is written down here, apart from the code: a route added without an entry,
or with other roles than this table says, fails the test.
"""

import asyncio
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shared.auth.principal import Role
from shared.auth.settings import AuthSettings
from shared.auth.tokens import issue_token
from tests.support.auth import (
    BURST_MERCHANT,
    MERCHANT,
    OTHER_MERCHANT,
    OTHER_STOREFRONT,
    STOREFRONT,
    TEST_PASSWORD,
    bearer,
)
from tests.support.complaints import complaint_body, post_complaint
from tests.support.platform import Platform
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.e2e]

SERVICES = ("intake", "triage", "resolution", "notification")
ANONYMOUS_OPERATIONS = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    # open in development and test; admin-only in production (tests/unit/test_access.py)
    ("GET", "/metrics"),
    ("POST", "/v1/auth/token"),
    # A survey's signed, expiring link is its own credential (notification).
    ("POST", "/v1/surveys/{token}"),
}
STAFF = {"agent", "supervisor", "admin"}
SUPERVISORS = {"supervisor", "admin"}
CUSTOMER = {"storefront", "admin"}
MERCHANTS = {"merchant", "admin"}
ENDPOINT = "/v1/merchants/{merchant_id}/webhook-endpoints/{endpoint_id}"
# (service, method, path) -> the roles admitted; the reference the OpenAPI must match.
EXPECTED_ROLES: dict[tuple[str, str, str], set[str]] = {
    ("intake", "POST", "/v1/complaints"): {"storefront"},
    # Intake knows no team before triage: agents and supervisors read triage and resolution.
    ("intake", "GET", "/v1/complaints/{complaint_id}"): {"storefront", "merchant", "admin"},
    ("intake", "GET", "/v1/complaints/by-number/{complaint_number}"): {
        "storefront",
        "merchant",
        "admin",
    },
    # The customer acts through the storefront; ops admins may act for them.
    ("intake", "POST", "/v1/complaints/{complaint_id}/supplements"): {"storefront", "admin"},
    ("intake", "POST", "/v1/complaints/{complaint_id}/withdrawal"): {"storefront", "admin"},
    ("intake", "GET", "/v1/customers/{customer_id}/complaints"): {
        "storefront",
        "merchant",
        "admin",
    },
    ("intake", "POST", "/v1/customers/{customer_id}/erasure"): {"storefront", "admin"},
    # Account flags are the risk team's.
    ("intake", "GET", "/v1/customers/{customer_id}/flags"): {"admin"},
    ("intake", "PUT", "/v1/customers/{customer_id}/flags/{flag}"): {"admin"},
    ("intake", "DELETE", "/v1/customers/{customer_id}/flags/{flag}"): {"admin"},
    ("triage", "GET", "/v1/complaints/{complaint_id}"): {
        "merchant",
        "agent",
        "supervisor",
        "admin",
    },
    # Re-triage and the queues are the ops teams' work; retraining the classifier is an admin's.
    ("triage", "POST", "/v1/complaints/{complaint_id}/retriage"): {"agent", "supervisor", "admin"},
    ("triage", "GET", "/v1/queues/{team}"): {"agent", "supervisor", "admin"},
    ("triage", "GET", "/v1/queues/manual-triage"): {"agent", "supervisor", "admin"},
    ("triage", "POST", "/v1/classifier/retrain"): {"admin"},
    ("resolution", "GET", "/v1/complaints/{complaint_id}"): {
        "merchant",
        "agent",
        "supervisor",
        "admin",
    },
    # Resolution: the ops teams work cases (detail, actions, queues); supervisors approve,
    # mediate, refer and review; merchants answer verifications and report their tasks; the
    # customer decides on offers and appeals through the storefront.
    ("resolution", "GET", "/v1/complaints/{complaint_id}/detail"): STAFF,
    ("resolution", "POST", "/v1/complaints/{complaint_id}/assignment"): STAFF,
    ("resolution", "POST", "/v1/complaints/{complaint_id}/investigation"): STAFF,
    ("resolution", "POST", "/v1/complaints/{complaint_id}/notes"): {
        "storefront",
        "merchant",
        "agent",
        "supervisor",
        "admin",
    },
    ("resolution", "POST", "/v1/complaints/{complaint_id}/verification-request"): STAFF,
    ("resolution", "POST", "/v1/complaints/{complaint_id}/verification-answer"): {
        "merchant",
        "admin",
    },
    ("resolution", "POST", "/v1/complaints/{complaint_id}/proposal"): STAFF,
    ("resolution", "POST", "/v1/complaints/{complaint_id}/approval"): SUPERVISORS,
    ("resolution", "POST", "/v1/complaints/{complaint_id}/customer-decision"): CUSTOMER,
    ("resolution", "POST", "/v1/complaints/{complaint_id}/counter-offer"): STAFF,
    ("resolution", "POST", "/v1/complaints/{complaint_id}/mediation"): SUPERVISORS,
    ("resolution", "POST", "/v1/complaints/{complaint_id}/mediation-offer"): SUPERVISORS,
    ("resolution", "POST", "/v1/complaints/{complaint_id}/referral"): SUPERVISORS,
    ("resolution", "POST", "/v1/complaints/{complaint_id}/external-outcome"): SUPERVISORS,
    ("resolution", "POST", "/v1/complaints/{complaint_id}/tasks/{task_key}/reports"): {
        "merchant",
        "agent",
        "supervisor",
        "admin",
    },
    ("resolution", "POST", "/v1/complaints/{complaint_id}/appeal"): CUSTOMER,
    ("resolution", "POST", "/v1/complaints/{complaint_id}/review"): SUPERVISORS,
    ("resolution", "POST", "/v1/complaints/{complaint_id}/review-decision"): SUPERVISORS,
    ("resolution", "GET", "/v1/queues/{team}"): STAFF,
    ("resolution", "GET", "/v1/my-queue"): STAFF,
    ("resolution", "GET", "/v1/cases"): {"merchant", "agent", "supervisor", "admin"},
    ("resolution", "GET", "/v1/ledger"): {"merchant", "agent", "supervisor", "admin"},
    ("notification", "GET", "/v1/complaints/{complaint_id}"): {"storefront", "admin"},
    # The complaint's merchant reports where its parcel is (progress updates say it).
    ("notification", "PUT", "/v1/complaints/{complaint_id}/parcel"): {"merchant", "admin"},
    # Merchants manage their own webhook endpoints (admins any merchant's); the customer states
    # preferences through the storefront; template previews are ops'.
    ("notification", "POST", "/v1/merchants/{merchant_id}/webhook-endpoints"): MERCHANTS,
    ("notification", "GET", "/v1/merchants/{merchant_id}/webhook-endpoints"): MERCHANTS,
    ("notification", "POST", f"{ENDPOINT}/secret"): MERCHANTS,
    ("notification", "DELETE", ENDPOINT): MERCHANTS,
    ("notification", "GET", "/v1/customers/{customer_id}/preferences"): {"storefront", "admin"},
    ("notification", "PUT", "/v1/customers/{customer_id}/preferences"): {"storefront", "admin"},
    ("notification", "POST", "/v1/templates/{message_type}/{channel}/{locale}/preview"): {"admin"},
    # Ops ask for a resolved case's survey; supervisors and ops read the results (KPIs).
    ("notification", "POST", "/v1/complaints/{complaint_id}/survey"): {"admin"},
    ("notification", "GET", "/v1/surveys"): {"supervisor", "admin"},
    # The staff directory: ops admins and supervisors keep it, an agent their own entry.
    **{
        ("notification", method, "/v1/staff/{staff_id}/contact"): STAFF
        for method in ("PUT", "GET", "DELETE")
    },
    # Evidence: uploaded by storefronts, read like the complaint it is attached to.
    ("intake", "POST", "/v1/evidence"): {"storefront"},
    ("intake", "GET", "/v1/evidence/{evidence_id}"): {"storefront", "merchant", "admin"},
    ("intake", "GET", "/v1/evidence/{evidence_id}/content"): {"storefront", "merchant", "admin"},
}
# A photo is attached to each owned complaint: the evidence routes' resource, by complaint id.
EVIDENCE_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 500
EVIDENCE_OF: dict[str, str] = {}
# Who can see what a service keeps: notification's rows know the storefront, not the team,
# and merchants never get customer contact data there.
SCOPE_FIELDS = {
    "intake": {"storefront", "merchant"},
    "triage": {"merchant", "team"},
    "resolution": {"merchant", "team", "storefront"},
    "notification": {"storefront"},
}


@dataclass(frozen=True)
class Caller:
    """One column of the matrix; role None = not authenticated (expect 401)."""

    label: str
    role: str | None
    credentials: Callable[[], dict[str, str]]
    storefront: str | None = None
    merchant: str | None = None
    team: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        """Fresh credentials (tokens are minted when used: they expire after 15 minutes)."""
        return self.credentials()


def _forged_token() -> dict[str, str]:
    token, _ = issue_token(
        AuthSettings(jwt_secret="not-the-platform-secret-" + "z" * 32),
        username="mallory",
        role=Role.ADMIN,
        teams=frozenset(),
    )
    return {"Authorization": f"Bearer {token}"}


CALLERS = (
    Caller("storefront", "storefront", STOREFRONT.headers, storefront="sf-test"),
    Caller("other storefront", "storefront", OTHER_STOREFRONT.headers, storefront="sf-other"),
    Caller("merchant", "merchant", MERCHANT.headers, merchant="m-1"),
    Caller("other merchant", "merchant", OTHER_MERCHANT.headers, merchant="m-2"),
    Caller("agent", "agent", lambda: bearer("test-agent"), team="merchant_management"),
    Caller("other agent", "agent", lambda: bearer("test-agent-other"), team="logistics"),
    Caller(
        "supervisor", "supervisor", lambda: bearer("test-supervisor"), team="merchant_management"
    ),
    Caller(
        "other supervisor", "supervisor", lambda: bearer("test-supervisor-other"), team="logistics"
    ),
    Caller("admin", "admin", lambda: bearer("test-admin")),
    Caller("anonymous", None, dict),
    Caller("unknown key", None, lambda: {"X-API-Key": "cpk_unknownkey00_" + "x" * 43}),
    Caller("forged token", None, _forged_token),
)


@dataclass(frozen=True)
class Owned:
    """A complaint and who owns it."""

    complaint_id: str
    complaint_number: str
    customer_id: str
    storefront: str
    merchant: str
    team: str


# What an admitted caller whose scope covers the complaint gets, where it is not plain 200:
# the owned complaints are received (no supplement wanted: 409); the first withdrawal closes
# one, later ones are 409; the matrix erases a customer who has nothing to erase.
IN_SCOPE_STATUS: dict[tuple[str, str, str], set[int]] = {
    ("intake", "POST", "/v1/complaints"): {201},
    ("intake", "POST", "/v1/evidence"): {201},
    ("intake", "POST", "/v1/complaints/{complaint_id}/supplements"): {409},
    ("intake", "POST", "/v1/complaints/{complaint_id}/withdrawal"): {200, 409},
    ("intake", "DELETE", "/v1/customers/{customer_id}/flags/{flag}"): {204},
    # The matrix withdraws both complaints before it reaches triage: their triage is closed,
    # unless the withdrawal has not reached triage yet.
    ("triage", "POST", "/v1/complaints/{complaint_id}/retriage"): {200, 409},
    # Each admitted POST registers an endpoint; each DELETE removes one made for it.
    ("notification", "POST", "/v1/merchants/{merchant_id}/webhook-endpoints"): {201},
    ("notification", "DELETE", ENDPOINT): {204},
    # One survey per case: the first request makes it (once case.opened has reached
    # notification: 404 before), the next ones are 409.
    ("notification", "POST", "/v1/complaints/{complaint_id}/survey"): {201, 404, 409},
    # Resolution's actions on the withdrawn complaints are refused (409) once the withdrawal
    # reached resolution; before it, the first steps of a case may still go through. Notes
    # are always taken. The ledger names no merchant or carrier here: 422.
    **{
        ("resolution", "POST", f"/v1/complaints/{{complaint_id}}/{action}"): {200, 409}
        for action in (
            "assignment",
            "investigation",
            "verification-request",
            "verification-answer",
            "proposal",
            "approval",
            "customer-decision",
            "counter-offer",
            "mediation",
            "mediation-offer",
            "referral",
            "external-outcome",
            "tasks/{task_key}/reports",
            "appeal",
            "review",
            "review-decision",
        )
    },
    ("resolution", "GET", "/v1/ledger"): {422},
    ("notification", "DELETE", "/v1/staff/{staff_id}/contact"): {204},
}
# Routes about a customer rather than one complaint: a list filtered by scope (never 404), or
# the risk team's flags, which no complaint scopes.
CUSTOMER_ROUTES = {
    ("intake", "GET", "/v1/customers/{customer_id}/complaints"),
    ("intake", "POST", "/v1/customers/{customer_id}/erasure"),
    ("intake", "GET", "/v1/customers/{customer_id}/flags"),
    ("intake", "PUT", "/v1/customers/{customer_id}/flags/{flag}"),
    ("intake", "DELETE", "/v1/customers/{customer_id}/flags/{flag}"),
}
# Routes about the platform rather than one complaint: any admitted caller gets the answer.
SURVEY_LISTS = {("notification", "GET", "/v1/surveys")}
PLATFORM_ROUTES = {
    ("notification", "GET", "/v1/surveys"),
    ("notification", "POST", "/v1/templates/{message_type}/{channel}/{locale}/preview"),
    ("triage", "POST", "/v1/classifier/retrain"),
    ("resolution", "GET", "/v1/my-queue"),
    ("resolution", "GET", "/v1/cases"),
    ("resolution", "GET", "/v1/ledger"),
}
# Lists about the caller, not one complaint: a 200 names no complaint of its own.
LIST_ROUTES = {("resolution", "GET", "/v1/my-queue"), ("resolution", "GET", "/v1/cases")}
# Queues are scoped by team, not by complaint: the team queue is the complaint's team's (the
# matrix names it in the path), the manual-triage queue is intake review's, whom no test
# caller belongs to.
QUEUE_ROUTES = {
    ("triage", "GET", "/v1/queues/{team}"),
    ("resolution", "GET", "/v1/queues/{team}"),
    ("triage", "GET", "/v1/queues/manual-triage"),
}
# Notification's routes about a merchant (its webhook endpoints): scoped by the merchant
# named in the path, whichever complaint the matrix holds.
MERCHANT_ROUTES = {
    ("notification", "POST", "/v1/merchants/{merchant_id}/webhook-endpoints"),
    ("notification", "GET", "/v1/merchants/{merchant_id}/webhook-endpoints"),
    ("notification", "POST", f"{ENDPOINT}/secret"),
    ("notification", "DELETE", ENDPOINT),
}
# The staff directory's routes, about one staff member: the matrix's entry is the agent
# caller's own (made by an admin before each call), so that agent is in scope and the other not.
STAFF_ROUTES = {
    ("notification", method, "/v1/staff/{staff_id}/contact") for method in ("PUT", "GET", "DELETE")
}
MATRIX_STAFF_ID = "agent:test-agent"
# Notification's routes scoped by the complaint's merchant (its rows know the merchant too).
MERCHANT_COMPLAINT_ROUTES = {("notification", "PUT", "/v1/complaints/{complaint_id}/parcel")}
# Routes about an owner (a merchant, a customer, a staff member) rather than one complaint.
OWNER_ROUTES = (
    MERCHANT_ROUTES
    | STAFF_ROUTES
    | {
        ("notification", "GET", "/v1/customers/{customer_id}/preferences"),
        ("notification", "PUT", "/v1/customers/{customer_id}/preferences"),
    }
)
# The matrix's webhook endpoints, by merchant (made by an admin when first needed).
ENDPOINT_OF: dict[str, str] = {}
PREFERENCES_STATED: set[str] = set()
MATRIX_HOOK_URL = "http://127.0.0.1:9/matrix-hook"
QUEUE_TEAM = {("triage", "GET", "/v1/queues/manual-triage"): "intake_review"}
MATRIX_FLAG = "matrix_check"
# The matrix erases a customer without complaints: the route, not anyone's data, is tested.
MATRIX_ERASED_CUSTOMER = "matrix-nobody"


def visible(service: str, caller: Caller, owned: Owned, team: str | None = None) -> bool:
    """The expected scope rule, stated independently of shared.auth.scope."""
    if caller.role == "admin":
        return True
    if team is not None:  # a queue: the caller's team, whoever owns the complaint
        return caller.role in ("agent", "supervisor") and caller.team == team
    fields = SCOPE_FIELDS[service]
    if caller.role == "storefront":
        return "storefront" in fields and caller.storefront == owned.storefront
    if caller.role == "merchant":
        return "merchant" in fields and caller.merchant == owned.merchant
    if caller.role in ("agent", "supervisor"):
        return "team" in fields and caller.team == owned.team
    return False


def expected_statuses(
    service: str, method: str, path: str, caller: Caller, owned: Owned
) -> set[int]:
    """What one cell of the matrix may answer."""
    route = (service, method, path)
    if caller.role is None:
        return {401}
    if caller.role not in EXPECTED_ROLES[route]:
        return {403}
    in_scope = IN_SCOPE_STATUS.get(route, {200})
    if route in MERCHANT_ROUTES:
        mine = caller.role == "admin" or caller.merchant == owned.merchant
        return in_scope if mine else {404}
    if route in MERCHANT_COMPLAINT_ROUTES:
        mine = caller.role == "admin" or caller.merchant == owned.merchant
        return in_scope if mine else {404}
    if route in STAFF_ROUTES:
        keeper = caller.role in ("admin", "supervisor") or caller.label == "agent"
        return in_scope if keeper else {404}
    if route in QUEUE_ROUTES:
        team = QUEUE_TEAM.get(route, owned.team)
        return in_scope if visible(service, caller, owned, team) else {404}
    if (
        route in CUSTOMER_ROUTES
        or route in PLATFORM_ROUTES
        or route[1:]
        in (
            ("POST", "/v1/complaints"),
            ("POST", "/v1/evidence"),
        )
    ):
        return in_scope
    return in_scope if visible(service, caller, owned) else {404}


async def _documents(platform: Platform, http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    docs = {}
    for name in SERVICES:
        response = await http.get(f"{platform.url(name)}/openapi.json")
        assert response.status_code == 200
        docs[name] = response.json()
    return docs


async def _upload_photo(
    client: httpx.AsyncClient, platform: Platform, customer_id: str, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(
        f"{platform.url('intake')}/v1/evidence",
        data={"kind": "photo", "customer_id": customer_id},
        files={"file": ("photo.jpg", EVIDENCE_JPEG, "image/jpeg")},
        headers=headers,
    )


async def _post_and_settle(
    platform: Platform, http: httpx.AsyncClient, **kw: Any
) -> tuple[str, str]:
    customer_id = f"cust-{kw['body']['n']}"
    photo = await _upload_photo(http, platform, customer_id, kw["headers"] or STOREFRONT.headers())
    assert photo.status_code == 201, photo.text
    body = complaint_body(**kw["body"], evidence_ids=[photo.json()["evidence_id"]])
    response = await post_complaint(http, platform.url("intake"), body, **kw["headers"])
    assert response.status_code == 201, response.text
    complaint_id: str = response.json()["complaint_id"]
    EVIDENCE_OF[complaint_id] = photo.json()["evidence_id"]

    async def everywhere() -> bool:
        for name in SERVICES:
            seen = await http.get(f"{platform.url(name)}/v1/complaints/{complaint_id}")
            if seen.status_code != 200:
                return False
        return True

    await wait_until(everywhere, timeout_s=60)
    return complaint_id, response.json()["complaint_number"]


@pytest.fixture(scope="module")
async def owned(platform: Platform) -> tuple[Owned, Owned]:
    """Complaint A (sf-test, m-1, merchant_management) and B (sf-other, m-2, logistics)."""
    async with httpx.AsyncClient(timeout=10, headers=bearer("test-admin")) as http:
        a = await _post_and_settle(platform, http, body={"n": 1}, headers={})
        b = await _post_and_settle(
            platform,
            http,
            body={
                "n": 2,
                "category_hint": "logistics",
                "target": "logistics",
                # Triage classifies by the description: this one is about the parcel.
                "description": "The parcel never arrived and tracking has not moved for a week.",
            },
            headers=OTHER_STOREFRONT.headers(),
        )
    return (
        Owned(*a, "cust-1", "sf-test", "m-1", "merchant_management"),
        Owned(*b, "cust-2", "sf-other", "m-2", "logistics"),
    )


class TestAuthorizationMatrix:
    async def test_every_route_declares_exactly_the_expected_roles(self, platform, http):
        docs = await _documents(platform, http)
        found = {}
        for name, doc in docs.items():
            for path, operations in doc["paths"].items():
                for method, operation in operations.items():
                    key = (method.upper(), path)
                    if key in ANONYMOUS_OPERATIONS:
                        assert "x-allowed-roles" not in operation, (name, key)
                        continue
                    assert "x-allowed-roles" in operation, f"{name} {key} declares no roles"
                    assert operation.get("security"), f"{name} {key} documents no security"
                    found[(name, *key)] = set(operation["x-allowed-roles"])
        assert found == EXPECTED_ROLES

    async def test_every_cell_answers_as_expected_and_nothing_leaks(self, platform, http, owned):
        docs = await _documents(platform, http)
        wrong: list[str] = []
        cells = 0
        async with httpx.AsyncClient(timeout=10) as client:
            missing_detail: dict[str, str] = {}
            for name in SERVICES:
                unknown = uuid.uuid4()
                response = await client.get(
                    f"{platform.url(name)}/v1/complaints/{unknown}", headers=bearer("test-admin")
                )
                missing_detail[name] = response.json()["detail"].replace(str(unknown), "<id>")
            unknown = uuid.uuid4()
            response = await client.get(
                f"{platform.url('intake')}/v1/evidence/{unknown}", headers=bearer("test-admin")
            )
            missing_evidence = response.json()["detail"].replace(str(unknown), "<id>")
            response = await client.get(
                f"{platform.url('triage')}/v1/queues/no_such_team", headers=bearer("test-admin")
            )
            missing_queue = response.json()["detail"].replace("no_such_team", "<team>")
            for name, doc in docs.items():
                for path, operations in doc["paths"].items():
                    for method in operations:
                        method_u = method.upper()
                        if (method_u, path) in ANONYMOUS_OPERATIONS:
                            # Open to anyone, whatever credentials come along.
                            for caller in CALLERS:
                                cells += 1
                                got = await _call(
                                    client, platform, name, method_u, path, caller, owned[0]
                                )
                                want = 422 if method_u == "POST" else 200  # token: no form sent
                                if got.status_code != want:
                                    wrong.append(
                                        f"{name} {method_u} {path} as {caller.label}: "
                                        f"{got.status_code} (expected {want})"
                                    )
                            continue
                        for caller in CALLERS:
                            for target in owned:
                                cells += 1
                                wanted = expected_statuses(name, method_u, path, caller, target)
                                got = await _call(
                                    client, platform, name, method_u, path, caller, target
                                )
                                if got.status_code not in wanted:
                                    wrong.append(
                                        f"{name} {method_u} {path} as {caller.label} on "
                                        f"{target.storefront}/{target.merchant}: {got.status_code} "
                                        f"(expected {wanted}) {got.text[:120]}"
                                    )
                                    continue
                                want = got.status_code
                                if (name, method_u, path) in CUSTOMER_ROUTES and want == 200:
                                    _assert_nothing_out_of_scope(name, caller, target, got)
                                    continue
                                if want >= 400:
                                    assert got.headers["content-type"] == "application/problem+json"
                                if want == 401:
                                    assert got.headers["www-authenticate"].startswith("Bearer")
                                if want == 404 and (name, method_u, path) in OWNER_ROUTES:
                                    # Worded as a missing merchant, endpoint or customer.
                                    assert got.json()["detail"].startswith("no "), got.text
                                    continue
                                if want == 200 and (name, method_u, path) in SURVEY_LISTS:
                                    assert "items" in got.json()
                                    continue
                                if (name, method_u, path) in STAFF_ROUTES:
                                    if want == 200:
                                        assert got.json()["staff_id"] == MATRIX_STAFF_ID
                                    continue
                                if want == 200 and (name, method_u, path) in OWNER_ROUTES:
                                    owner = got.json()
                                    if "items" in owner:
                                        assert {i["merchant_id"] for i in owner["items"]} == {
                                            target.merchant
                                        }
                                    elif "customer_id" in owner:
                                        assert owner["customer_id"] == matrix_customer(target)
                                    else:
                                        assert owner["merchant_id"] == target.merchant
                                    continue
                                if want == 404:
                                    # Out of scope reads exactly like a complaint that is not there.
                                    detail = (
                                        got.json()["detail"]
                                        .replace(target.complaint_id, "<id>")
                                        .replace(target.complaint_number, "<id>")
                                    )
                                    if (name, method_u, path) in QUEUE_ROUTES:
                                        team = QUEUE_TEAM.get((name, method_u, path), target.team)
                                        detail = got.json()["detail"].replace(team, "<team>")
                                        assert detail == missing_queue, (path, caller.label)
                                        continue
                                    if "{evidence_id}" in path:
                                        detail = detail.replace(
                                            EVIDENCE_OF[target.complaint_id], "<id>"
                                        )
                                        assert detail == missing_evidence, (path, caller.label)
                                        continue
                                    assert detail == missing_detail[name], (name, caller.label)
                                if want == 200 and path.endswith("/content"):
                                    assert got.content == EVIDENCE_JPEG
                                elif want == 200 and (name, method_u, path) in QUEUE_ROUTES:
                                    team = QUEUE_TEAM.get((name, method_u, path), target.team)
                                    assert got.json()["team"] == team
                                elif (
                                    want == 200
                                    and method_u == "GET"
                                    and (name, method_u, path) not in LIST_ROUTES
                                ):
                                    assert got.json()["complaint_id"] == target.complaint_id
        print(f"authorization matrix: {cells} cells")
        assert not wrong, "\n".join(wrong)
        assert cells >= 250

    async def test_a_storefront_naming_its_customer_sees_only_that_customers_complaints(
        self, platform, owned
    ):
        a, _ = owned
        async with httpx.AsyncClient(timeout=10) as client:
            for name in ("intake", "notification"):
                url = f"{platform.url(name)}/v1/complaints/{a.complaint_id}"
                mine = await client.get(
                    url, headers={**STOREFRONT.headers(), "X-Customer-ID": "cust-1"}
                )
                other = await client.get(
                    url, headers={**STOREFRONT.headers(), "X-Customer-ID": "cust-99"}
                )
                assert (mine.status_code, other.status_code) == (200, 404), name


async def _call(
    client: httpx.AsyncClient,
    platform: Platform,
    service: str,
    method: str,
    path: str,
    caller: Caller,
    target: Owned,
) -> httpx.Response:
    customer = target.customer_id
    if path.endswith("/erasure"):
        customer = MATRIX_ERASED_CUSTOMER
    if path.endswith("/preferences"):
        customer = await _stated_preferences(client, platform, service, target)
    if "{staff_id}" in path:
        # Each call finds the entry there (a DELETE before it removed it).
        staff_url = platform.url(service) + path.replace("{staff_id}", MATRIX_STAFF_ID)
        made = await client.put(
            staff_url, json={"email": "matrix.agent@ops.example"}, headers=bearer("test-admin")
        )
        assert made.status_code == 200, made.text
    url = platform.url(service) + (
        path.replace("{complaint_id}", target.complaint_id)
        .replace("{complaint_number}", target.complaint_number)
        .replace("{customer_id}", customer)
        .replace("{flag}", MATRIX_FLAG)
        .replace("{team}", target.team)
        .replace("{staff_id}", MATRIX_STAFF_ID)
    )
    headers = caller.headers
    url = url.replace("{evidence_id}", EVIDENCE_OF.get(target.complaint_id, ""))
    if "{merchant_id}" in path:
        url = await _with_endpoint(client, platform, service, method, path, url, target)
    url = (
        url.replace("{message_type}", "complaint.received")
        .replace("{channel}", "email")
        .replace("{locale}", "en")
    )
    if path == "/v1/evidence":
        customer_id = "cust-1" if target.merchant == "m-1" else "cust-2"
        return await _upload_photo(client, platform, customer_id, caller.headers)
    if path == "/v1/auth/token":
        return await client.post(url, headers=headers)
    if path.endswith("/flags/{flag}") and method == "DELETE" and caller.role == "admin":
        # Something to remove: each admitted DELETE finds the flag it deletes.
        await client.put(url, json={"flag": MATRIX_FLAG, "reason": "matrix"}, headers=headers)
    if path == "/v1/complaints":
        body = complaint_body(1 if target.merchant == "m-1" else 2)
        headers = {**headers, "Idempotency-Key": f"matrix-{uuid.uuid4()}"}
        return await client.post(url, json=body, headers=headers)
    bodies = {
        "/supplements": {"note": "the box was also wet"},
        "/withdrawal": {"reason": "matrix"},
        "/flags/{flag}": {"flag": MATRIX_FLAG, "reason": "matrix"},
        "/retriage": {"priority": "important", "reason": "matrix check"},
        "/webhook-endpoints": {"url": MATRIX_HOOK_URL},
        "/preferences": {"non_essential_opt_out": False},
        "/contact": {"email": "matrix.agent@ops.example"},
        "/parcel": {
            "carrier": "SF Express",
            "tracking_number": "SF0000000001",
            "status": "in transit",
            "status_at": "2026-11-20T08:00:00+00:00",
        },
        "/notes": {"note": "matrix"},
        "/verification-answer": {"stance": "accept"},
        "/approval": {"approve": True},
        "/customer-decision": {"accept": False},
        "/referral": {"body": "consumer_association"},
        "/external-outcome": {"outcome": "dismissed", "summary": "matrix"},
        "/reports": {"action": "start"},
        "/appeal": {"reason": "matrix"},
        "/review-decision": {"outcome": "upheld", "reason": "matrix"},
    }
    body = next((b for suffix, b in bodies.items() if path.endswith(suffix)), None)
    if method in ("POST", "PUT"):
        return await client.request(method, url, json=body or {}, headers=headers)
    return await client.request(method, url, headers=headers)


def matrix_customer(target: Owned) -> str:
    """A customer of the target's storefront alone (the suite's cust-N post through several)."""
    return f"matrix-prefs-{target.storefront}"


async def _stated_preferences(
    client: httpx.AsyncClient, platform: Platform, service: str, target: Owned
) -> str:
    """The target's storefront states its customer's preferences first: they are its own."""
    customer = matrix_customer(target)
    if customer not in PREFERENCES_STATED:
        owner = STOREFRONT if target.storefront == STOREFRONT.storefront_id else OTHER_STOREFRONT
        stated = await client.put(
            f"{platform.url(service)}/v1/customers/{customer}/preferences",
            json={"locale": "en"},
            headers=owner.headers(),
        )
        assert stated.status_code == 200, stated.text
        PREFERENCES_STATED.add(customer)
    return customer


async def _with_endpoint(
    client: httpx.AsyncClient,
    platform: Platform,
    service: str,
    method: str,
    path: str,
    url: str,
    target: Owned,
) -> str:
    """The URL with the merchant and an endpoint of theirs (a fresh one for each DELETE)."""
    url = url.replace("{merchant_id}", target.merchant)
    if "{endpoint_id}" not in path:
        return url
    endpoint = ENDPOINT_OF.get(target.merchant)
    if endpoint is None or method == "DELETE":
        made = await client.post(
            f"{platform.url(service)}/v1/merchants/{target.merchant}/webhook-endpoints",
            json={"url": MATRIX_HOOK_URL},
            headers=bearer("test-admin"),
        )
        assert made.status_code == 201, made.text
        endpoint = made.json()["endpoint_id"]
        if method != "DELETE":
            ENDPOINT_OF[target.merchant] = endpoint
    return url.replace("{endpoint_id}", endpoint)


def _assert_nothing_out_of_scope(
    service: str, caller: Caller, target: Owned, response: httpx.Response
) -> None:
    """A customer's history lists the target only to callers whose scope covers it."""
    document = response.json()
    if not isinstance(document, dict) or "items" not in document:
        return
    listed = {item["complaint_id"] for item in document["items"]}
    if visible(service, caller, target):
        assert target.complaint_id in listed, (caller.label, target)
    else:
        assert target.complaint_id not in listed, (caller.label, target)


class TestProtections:
    async def test_a_burst_from_one_key_gets_429_with_retry_after(self, platform, owned):
        a, _ = owned
        url = f"{platform.url('triage')}/v1/complaints/{a.complaint_id}"
        async with httpx.AsyncClient(timeout=30) as client:
            responses = await asyncio.gather(
                *(client.get(url, headers=BURST_MERCHANT.headers()) for _ in range(300))
            )
        limited = [r for r in responses if r.status_code == 429]
        assert limited, "no request was rate limited"
        assert {r.status_code for r in responses} <= {404, 429}
        for response in limited:
            assert int(response.headers["retry-after"]) >= 1
            assert response.headers["content-type"] == "application/problem+json"

    async def test_a_body_over_the_limit_is_413_before_parsing(self, platform):
        url = f"{platform.url('intake')}/v1/complaints"
        big = b'{"description": "' + b"x" * (200 * 1024) + b'"}'
        async with httpx.AsyncClient(timeout=10) as client:
            declared = await client.post(
                url,
                content=big,
                headers={**STOREFRONT.headers(), "content-type": "application/json"},
            )

            async def stream():  # no Content-Length: counted as it arrives
                for start in range(0, len(big), 16 * 1024):
                    yield big[start : start + 16 * 1024]

            streamed = await client.post(
                url,
                content=stream(),
                headers={**STOREFRONT.headers(), "content-type": "application/json"},
            )
        for response in (declared, streamed):
            assert response.status_code == 413, response.text
            assert response.headers["content-type"] == "application/problem+json"

    def test_a_connection_that_never_finishes_its_headers_is_closed(self, platform):
        host, port = platform.url("triage").removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            started = time.monotonic()
            assert sock.recv(1024) == b"", "the server answered instead of closing"
            assert time.monotonic() - started < 25

    async def test_people_sign_in_for_a_token_that_works_and_a_wrong_password_is_401(
        self, platform, owned
    ):
        a, _ = owned
        async with httpx.AsyncClient(timeout=10) as client:
            token_url = f"{platform.url('resolution')}/v1/auth/token"
            good = await client.post(
                token_url, data={"username": "test-agent", "password": TEST_PASSWORD}
            )
            bad = await client.post(token_url, data={"username": "test-agent", "password": "nope"})
            assert good.status_code == 200, good.text
            assert bad.status_code == 401
            assert bad.headers["content-type"] == "application/problem+json"
            token = good.json()["access_token"]
            case = await client.get(
                f"{platform.url('resolution')}/v1/complaints/{a.complaint_id}",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert case.status_code == 200
            forged = await client.get(
                f"{platform.url('resolution')}/v1/complaints/{a.complaint_id}",
                headers={"Authorization": f"Bearer {token[:-4]}AAAA"},
            )
            assert forged.status_code == 401


class TestKeysAndIdempotency:
    async def test_a_caller_may_hold_several_keys_and_a_revoked_one_stops_working(
        self, platform, owned
    ):
        from services.access import create_key, revoke
        from shared.auth.principal import Role

        a, _ = owned
        config = platform.stack.config
        first = await create_key(config, role=Role.MERCHANT, name="rotation-1", merchant_id="m-1")
        second = await create_key(config, role=Role.MERCHANT, name="rotation-2", merchant_id="m-1")
        url = f"{platform.url('triage')}/v1/complaints/{a.complaint_id}"
        async with httpx.AsyncClient(timeout=10) as client:
            for created in (first, second):
                ok = await client.get(url, headers={"X-API-Key": created.key.secret})
                assert ok.status_code == 200, ok.text
            await revoke(config, second.key.prefix)

            async def revoked() -> bool:
                gone = await client.get(url, headers={"X-API-Key": second.key.secret})
                return gone.status_code == 401

            await wait_until(revoked, timeout_s=15)  # the key cache TTL is 5 s
            still = await client.get(url, headers={"X-API-Key": first.key.secret})
            assert still.status_code == 200

    async def test_idempotency_keys_are_each_callers_own(self, platform):
        key = f"shared-key-{uuid.uuid4()}"
        async with httpx.AsyncClient(timeout=10) as client:
            mine = await post_complaint(
                client, platform.url("intake"), complaint_body(1), **{"Idempotency-Key": key}
            )
            theirs = await post_complaint(
                client,
                platform.url("intake"),
                complaint_body(2),
                **{"Idempotency-Key": key, **OTHER_STOREFRONT.headers()},
            )
        assert (mine.status_code, theirs.status_code) == (201, 201)
        assert "idempotent-replayed" not in theirs.headers
        assert mine.json()["complaint_id"] != theirs.json()["complaint_id"]

    async def test_request_logs_name_the_caller(self, platform, owned):
        a, _ = owned
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(
                f"{platform.url('resolution')}/v1/complaints/{a.complaint_id}",
                headers=bearer("test-supervisor"),
            )
        assert response.status_code == 200

        async def logged() -> bool:
            return '"caller":"supervisor:test-supervisor"' in platform.logs("resolution")

        await wait_until(logged, timeout_s=10)
