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
}
# (service, method, path) -> the roles admitted; the reference the OpenAPI must match.
EXPECTED_ROLES: dict[tuple[str, str, str], set[str]] = {
    ("intake", "POST", "/v1/complaints"): {"storefront"},
    # Intake knows no team before triage: agents and supervisors read triage and resolution.
    ("intake", "GET", "/v1/complaints/{complaint_id}"): {"storefront", "merchant", "admin"},
    ("triage", "GET", "/v1/complaints/{complaint_id}"): {
        "merchant",
        "agent",
        "supervisor",
        "admin",
    },
    ("resolution", "GET", "/v1/complaints/{complaint_id}"): {
        "merchant",
        "agent",
        "supervisor",
        "admin",
    },
    ("notification", "GET", "/v1/complaints/{complaint_id}"): {"storefront", "admin"},
}
# Who can see what a service keeps: notification's rows know the storefront, not the team,
# and merchants never get customer contact data there.
SCOPE_FIELDS = {
    "intake": {"storefront", "merchant"},
    "triage": {"merchant", "team"},
    "resolution": {"merchant", "team"},
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
    storefront: str
    merchant: str
    team: str


def visible(service: str, caller: Caller, owned: Owned) -> bool:
    """The expected scope rule, stated independently of shared.auth.scope."""
    if caller.role == "admin":
        return True
    fields = SCOPE_FIELDS[service]
    if caller.role == "storefront":
        return "storefront" in fields and caller.storefront == owned.storefront
    if caller.role == "merchant":
        return "merchant" in fields and caller.merchant == owned.merchant
    if caller.role in ("agent", "supervisor"):
        return "team" in fields and caller.team == owned.team
    return False


def expected_status(service: str, method: str, path: str, caller: Caller, owned: Owned) -> int:
    """What one cell of the matrix must answer."""
    roles = EXPECTED_ROLES[(service, method, path)]
    if caller.role is None:
        return 401
    if caller.role not in roles:
        return 403
    if method == "POST":
        return 201
    return 200 if visible(service, caller, owned) else 404


async def _documents(platform: Platform, http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    docs = {}
    for name in SERVICES:
        response = await http.get(f"{platform.url(name)}/openapi.json")
        assert response.status_code == 200
        docs[name] = response.json()
    return docs


async def _post_and_settle(platform: Platform, http: httpx.AsyncClient, **kw: Any) -> str:
    response = await post_complaint(
        http, platform.url("intake"), complaint_body(**kw["body"]), **kw["headers"]
    )
    assert response.status_code == 201, response.text
    complaint_id: str = response.json()["complaint_id"]

    async def everywhere() -> bool:
        for name in SERVICES:
            seen = await http.get(f"{platform.url(name)}/v1/complaints/{complaint_id}")
            if seen.status_code != 200:
                return False
        return True

    await wait_until(everywhere, timeout_s=60)
    return complaint_id


@pytest.fixture(scope="module")
async def owned(platform: Platform) -> tuple[Owned, Owned]:
    """Complaint A (sf-test, m-1, merchant_management) and B (sf-other, m-2, logistics)."""
    async with httpx.AsyncClient(timeout=10, headers=bearer("test-admin")) as http:
        a = await _post_and_settle(platform, http, body={"n": 1}, headers={})
        b = await _post_and_settle(
            platform,
            http,
            body={"n": 2, "category_hint": "logistics", "target": "logistics"},
            headers=OTHER_STOREFRONT.headers(),
        )
    return (
        Owned(a, "sf-test", "m-1", "merchant_management"),
        Owned(b, "sf-other", "m-2", "logistics"),
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
                                want = expected_status(name, method_u, path, caller, target)
                                got = await _call(
                                    client, platform, name, method_u, path, caller, target
                                )
                                if got.status_code != want:
                                    wrong.append(
                                        f"{name} {method_u} {path} as {caller.label} on "
                                        f"{target.storefront}/{target.merchant}: {got.status_code} "
                                        f"(expected {want}) {got.text[:120]}"
                                    )
                                    continue
                                if want >= 400:
                                    assert got.headers["content-type"] == "application/problem+json"
                                if want == 401:
                                    assert got.headers["www-authenticate"].startswith("Bearer")
                                if want == 404:
                                    # Out of scope reads exactly like a complaint that is not there.
                                    detail = got.json()["detail"].replace(
                                        target.complaint_id, "<id>"
                                    )
                                    assert detail == missing_detail[name], (name, caller.label)
                                if want == 200:
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
    url = platform.url(service) + path.replace("{complaint_id}", target.complaint_id)
    if path == "/v1/auth/token":
        return await client.post(url, headers=caller.headers)
    if method == "POST":
        body = complaint_body(1 if target.merchant == "m-1" else 2)
        headers = {**caller.headers, "Idempotency-Key": f"matrix-{uuid.uuid4()}"}
        return await client.post(url, json=body, headers=headers)
    return await client.request(method, url, headers=caller.headers)


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
