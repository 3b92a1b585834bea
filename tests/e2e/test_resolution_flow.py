"""The domain's example flows on the running platform: a complaint posted to intake, triaged,
then worked in resolution by an agent, a supervisor, the merchant and the customer (through
the storefront), each over HTTP with their own credentials; timers that survive kill -9.

The test platform shortens the merchant's verification deadline and auto-close to seconds
(`tests/support/platform.py`, RESOLUTION_SHORT_DEADLINES).
"""

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from shared.events import Topic, qualified_topic
from tests.support.auth import MERCHANT, OTHER_MERCHANT, STOREFRONT, bearer
from tests.support.complaints import complaint_body, post_complaint
from tests.support.kafka import read_all
from tests.support.platform import Platform
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.e2e]

AGENT = "test-agent"
SUPERVISOR = "test-supervisor"
FLOW_DEADLINE_S = 60
# Past the test platform's verification deadline (10 s) and auto-close (6 s), with the timer
# worker's poll on top.
TIMER_DEADLINE_S = 60
_next = iter(range(701, 100_000, 7))  # merchant m-1 (n % 7 == 1): the MERCHANT key's


class Flow:
    """One complaint worked through resolution's API."""

    def __init__(self, platform: Platform, http: httpx.AsyncClient) -> None:
        self.platform = platform
        self.http = http
        self.complaint_id = ""

    @property
    def case_url(self) -> str:
        return f"{self.platform.url('resolution')}/v1/complaints/{self.complaint_id}"

    async def post(self, **overrides: Any) -> None:
        body = complaint_body(next(_next), **overrides)
        response = await post_complaint(self.http, self.platform.url("intake"), body)
        assert response.status_code == 201, response.text
        self.complaint_id = response.json()["complaint_id"]
        await self.wait_for_state("open", "investigating")

    async def case(self) -> dict[str, Any]:
        response = await self.http.get(self.case_url, headers=bearer(AGENT))
        return response.json() if response.status_code == 200 else {}

    async def detail(self) -> dict[str, Any]:
        response = await self.http.get(f"{self.case_url}/detail", headers=bearer(AGENT))
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def wait_for_state(self, *states: str) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            case = await self.case()
            return case if case.get("state") in states else None

        result: dict[str, Any] = await wait_until(
            reached, timeout_s=TIMER_DEADLINE_S, what=f"case in {states}"
        )
        return result

    async def act(
        self, path: str, headers: dict[str, str], body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        response = await self.http.post(f"{self.case_url}/{path}", json=body or {}, headers=headers)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        result: dict[str, Any] = response.json()
        return result

    async def investigate(self) -> None:
        case = await self.case()
        assert case["assignee_id"] == f"agent:{AGENT}", case
        await self.act("investigation", bearer(AGENT))

    async def customer(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.act("customer-decision", STOREFRONT.headers(), body)

    async def carry_out(self) -> dict[str, Any]:
        """Every task to done: the merchant's systems report theirs, the agent sends messages."""
        case: dict[str, Any] = {}
        for _ in range(20):
            tasks = [t for t in (await self.detail())["tasks"] if t["state"] != "done"]
            ready = [t for t in tasks if t["due_at"] is not None]
            if not ready:
                break
            task = ready[0]
            url = f"tasks/{task['key']}/reports"
            merchant = MERCHANT.headers()
            if task["state"] == "pending":
                await self.act(url, merchant, {"action": "start"})
            facts: list[dict[str, Any]] = {
                "return": [
                    {"action": "record", "facts": {"tracking_number": "YT9000"}},
                    {"action": "receive_return"},
                    {"action": "inspect", "facts": {"result": "passed", "note": "intact"}},
                ],
                "refund": [{"action": "record", "facts": {"reference": "PAY-77"}}],
                "coupon": [{"action": "issue_coupon", "facts": {"code": "CP-1"}}],
                "reship": [{"action": "record", "facts": {"tracking_number": "SF-1"}}],
                "exchange": [{"action": "record", "facts": {"tracking_number": "SF-2"}}],
            }.get(task["kind"], [{"action": "record", "facts": {"sent_via": "app"}}])
            for report in facts:
                await self.act(url, merchant, report)
            case = await self.act(url, bearer(AGENT), {"action": "complete"})
        return case

    async def events(self, admin_db: asyncpg.Connection) -> list[str]:
        rows = await admin_db.fetch(
            "SELECT event_type FROM resolution.outbox WHERE message_key = $1 ORDER BY id",
            self.complaint_id,
        )
        return [row["event_type"] for row in rows]


@pytest.fixture
def flow(platform: Platform, http: httpx.AsyncClient) -> Flow:
    return Flow(platform, http)


class TestExampleFlows:
    async def test_a_broken_item_is_returned_refunded_and_compensated_then_closes(
        self, flow: Flow, platform: Platform, http: httpx.AsyncClient, admin_db
    ):
        await flow.post()
        await flow.investigate()
        await flow.act(
            "notes",
            STOREFRONT.headers(),
            {"note": "the box was already dented on arrival", "evidence_refs": ["photo-2"]},
        )
        case = await flow.act(
            "verification-request", bearer(AGENT), {"questions": ["Your QC record?"]}
        )
        assert case["state"] == "awaiting_merchant"
        # Merchants answer only their own cases: another merchant finds none.
        other = await http.post(
            f"{flow.case_url}/verification-answer",
            json={"stance": "accept"},
            headers=OTHER_MERCHANT.headers(),
        )
        assert other.status_code == 404
        await flow.act(
            "verification-answer",
            MERCHANT.headers(),
            {"stance": "accept", "statement": "our packing failed"},
        )
        case = await flow.act("proposal", bearer(AGENT), {})
        assert case["state"] == "awaiting_customer", case
        assert case["responsibility"] == "merchant"
        kinds = [r["kind"] for r in case["proposal"]["remedies"]]
        assert "return_and_refund" in kinds
        assert "coupon" in kinds
        case = await flow.customer({"accept": True, "offer_hash": case["proposal"]["offer_hash"]})
        assert case["state"] == "executing"
        case = await flow.carry_out()
        assert case["state"] == "resolved"
        detail = await flow.detail()
        assert detail["consent"]["offer_hash"] == case["proposal"]["offer_hash"]
        assert {line["service"] for line in detail["timeline"]} >= {
            "triage_service",
            "resolution_service",
        }
        assert any(
            line["source"] == "customer" and line["actor"] == "storefront:sf-test"
            for line in detail["timeline"]
        )
        await flow.wait_for_state("closed")
        ledger = await http.get(
            f"{platform.url('resolution')}/v1/ledger",
            params={"merchant_id": "m-1"},
            headers=MERCHANT.headers(),
        )
        assert ledger.status_code == 200
        assert ledger.json()["totals"][0]["total"]
        events = await flow.events(admin_db)
        assert events[-2:] == ["case.resolved", "case.closed"]

        async def customer_sees_closed() -> bool:
            view = await http.get(
                f"{platform.url('intake')}/v1/complaints/{flow.complaint_id}",
                headers=STOREFRONT.headers(),
            )
            return bool(view.json()["visible_state"] == "closed")

        await wait_until(customer_sees_closed, timeout_s=FLOW_DEADLINE_S, what="customer view")
        config = platform.stack.config
        messages = await read_all(
            config.kafka_bootstrap, qualified_topic(Topic.RESOLUTION_CASE, config.topic_prefix)
        )
        mine = [m for m in messages if m.key == flow.complaint_id.encode()]
        assert mine
        assert all(m.header("merchant_id") == "m-1" for m in mine)

    async def test_a_crushed_parcel_is_refunded_with_a_200_coupon_a_supervisor_approved(
        self, flow: Flow, platform: Platform, http: httpx.AsyncClient
    ):
        await flow.post(demands=[{"type": "refund"}])
        await flow.investigate()
        carrier = f"carrier-{uuid.uuid4().hex[:6]}"
        case = await flow.act(
            "proposal",
            bearer(AGENT),
            {
                "finding": {
                    "responsibility": "logistics",
                    "reason": "the carrier's scan shows the box crushed",
                },
                "goodwill": [
                    {
                        "kind": "coupon",
                        "reason": "the company accepts responsibility",
                        "amount": "200",
                        "valid_days": 30,
                    }
                ],
                "carrier_id": carrier,
            },
        )
        assert case["state"] == "pending_approval", case
        assert case["proposal"]["approval"]["reasons"]
        # Only a supervisor approves.
        refused = await flow.http.post(
            f"{flow.case_url}/approval", json={"approve": True}, headers=bearer(AGENT)
        )
        assert refused.status_code == 403
        case = await flow.act("approval", bearer(SUPERVISOR), {"approve": True})
        assert case["state"] == "awaiting_customer"
        case = await flow.customer({"accept": True})
        case = await flow.carry_out()
        assert case["state"] == "resolved"
        ledger = await http.get(
            f"{platform.url('resolution')}/v1/ledger",
            params={"carrier_id": carrier},
            headers=bearer(SUPERVISOR),
        )
        assert ledger.status_code == 200, ledger.text
        assert ledger.json()["totals"] == [{"currency": "CNY", "total": "299.00", "entries": 1}]
        # A merchant reads no carrier's ledger.
        hidden = await http.get(
            f"{platform.url('resolution')}/v1/ledger",
            params={"carrier_id": carrier},
            headers=MERCHANT.headers(),
        )
        assert hidden.status_code == 404

    async def test_a_100_coupon_rejected_for_500_is_settled_by_a_supervisor(self, flow: Flow):
        await flow.post()
        await flow.investigate()
        case = await flow.act(
            "proposal",
            bearer(AGENT),
            {
                "finding": {"responsibility": "merchant", "reason": "the photo shows the crack"},
                "goodwill": [{"kind": "coupon", "reason": "sorry", "amount": "100"}],
            },
        )
        assert case["state"] == "awaiting_customer", case
        case = await flow.customer({"accept": False, "demanded_compensation": "500"})
        assert case["state"] == "negotiating"
        case = await flow.act("counter-offer", bearer(AGENT), {})
        assert case["state"] == "awaiting_customer"
        await flow.customer({"accept": False, "demanded_compensation": "500"})
        refused = await flow.http.post(
            f"{flow.case_url}/counter-offer", json={}, headers=bearer(AGENT)
        )
        assert refused.status_code == 409
        assert "escalate_to_mediation" in refused.json()["allowed_triggers"]
        await flow.act("mediation", bearer(SUPERVISOR))
        case = await flow.act(
            "mediation-offer",
            bearer(SUPERVISOR),
            {"compensation": "300", "concessions": ["refund", "free_return_pickup"]},
        )
        assert case["state"] == "awaiting_customer", case
        descriptions = [r["description"] for r in case["proposal"]["remedies"]]
        assert any("free pickup" in d for d in descriptions)
        assert any("coupon of 300.00" in d for d in descriptions)
        case = await flow.customer({"accept": True})
        assert case["state"] == "executing"

    async def test_a_merchant_silent_past_the_deadline_answers_for_the_case(
        self, flow: Flow, admin_db
    ):
        await flow.post()
        await flow.investigate()
        await flow.act("verification-request", bearer(AGENT), {"questions": ["QC record?"]})
        case = await flow.wait_for_state("investigating")
        assert case["verification"]["result"] == "deadline_missed"
        case = await flow.act("proposal", bearer(AGENT), {})
        assert case["responsibility"] == "merchant"
        assert "case.merchant_verification_deadline_missed" in await flow.events(admin_db)

    async def test_an_appeal_after_closing_is_reviewed_and_reopens_the_case(self, flow: Flow):
        await flow.post(demands=[{"type": "reship"}])
        await flow.investigate()
        case = await flow.act(
            "proposal",
            bearer(AGENT),
            {"finding": {"responsibility": "merchant", "reason": "cracked in the box"}},
        )
        # The cracked kettle: reshipped within 24 hours with a 50 coupon.
        described = [r["description"] for r in case["proposal"]["remedies"]]
        assert described[:2] == [
            "reship within 24 h (goods worth 299.00 CNY)",
            "no-threshold coupon of 50.00 CNY, valid 30 days",
        ]
        await flow.customer({"accept": True})
        await flow.carry_out()
        await flow.wait_for_state("closed")
        case = await flow.act("appeal", STOREFRONT.headers(), {"reason": "a second crack"})
        assert case["state"] == "appealed"
        await flow.act("review", bearer(SUPERVISOR))
        case = await flow.act(
            "review-decision",
            bearer(SUPERVISOR),
            {"outcome": "reopened", "reason": "the new photo shows a second crack"},
        )
        assert (case["state"], case["status"]) == ("reopened", "processing")
        case = await flow.act("investigation", bearer(AGENT))
        assert case["state"] == "investigating"


@pytest.mark.chaos
class TestTimersSurviveKill9:
    async def test_the_verification_deadline_fires_once_after_a_kill_9(
        self, flow: Flow, platform: Platform, admin_db
    ):
        await flow.post()
        await flow.investigate()
        await flow.act("verification-request", bearer(AGENT), {})
        platform.kill("resolution")
        await admin_db.execute("SELECT pg_sleep(12)")
        platform.restart("resolution")
        await flow.wait_for_state("investigating")
        events = await flow.events(admin_db)
        assert events.count("case.merchant_verification_deadline_missed") == 1

    async def test_auto_close_fires_once_after_a_kill_9(
        self, flow: Flow, platform: Platform, admin_db
    ):
        await flow.post(demands=[{"type": "reship"}])
        await flow.investigate()
        await flow.act(
            "proposal",
            bearer(AGENT),
            {"finding": {"responsibility": "merchant", "reason": "cracked"}},
        )
        await flow.customer({"accept": True})
        case = await flow.carry_out()
        assert case["state"] == "resolved"
        platform.kill("resolution")
        await admin_db.execute("SELECT pg_sleep(8)")
        platform.restart("resolution")
        await flow.wait_for_state("closed")
        events = await flow.events(admin_db)
        assert events.count("case.closed") == 1
        assert events[-1] == "case.closed"


class TestOtherServicesMoveTheCase:
    async def test_a_retriage_updates_the_case_where_it_stands(
        self, flow: Flow, platform: Platform, http: httpx.AsyncClient, admin_db
    ):
        await flow.post()
        await flow.investigate()
        response = await http.post(
            f"{platform.url('triage')}/v1/complaints/{flow.complaint_id}/retriage",
            json={"priority": "urgent", "reason": "the customer is in hospital"},
            headers=bearer(AGENT),
        )
        assert response.status_code == 200, response.text

        async def raised() -> dict[str, Any] | None:
            case = await flow.case()
            return case if case.get("priority") == "urgent" else None

        case = await wait_until(raised, timeout_s=FLOW_DEADLINE_S, what="re-triage applied")
        assert case["state"] == "investigating"
        assert "case.retriaged" in await flow.events(admin_db)

    async def test_a_withdrawal_at_intake_withdraws_the_case(
        self, flow: Flow, platform: Platform, http: httpx.AsyncClient, admin_db
    ):
        await flow.post()
        response = await http.post(
            f"{platform.url('intake')}/v1/complaints/{flow.complaint_id}/withdrawal",
            json={"reason": "sorted it out with the shop"},
            headers=STOREFRONT.headers(),
        )
        assert response.status_code == 200, response.text
        case = await flow.wait_for_state("withdrawn")
        assert case["status"] == "closed"
        refused = await http.post(f"{flow.case_url}/investigation", json={}, headers=bearer(AGENT))
        assert refused.status_code == 409
        assert refused.json()["allowed_triggers"] == []


async def test_a_retried_action_with_its_idempotency_key_acts_once(flow: Flow, admin_db):
    await flow.post()
    key = {**bearer(AGENT), "Idempotency-Key": f"retry-{uuid.uuid4().hex[:8]}"}
    first = await flow.http.post(f"{flow.case_url}/investigation", json={}, headers=key)
    again = await flow.http.post(f"{flow.case_url}/investigation", json={}, headers=key)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert (await flow.events(admin_db)).count("case.investigation_started") == 1
    note = {**bearer(AGENT), "Idempotency-Key": f"note-{uuid.uuid4().hex[:8]}"}
    url = f"{flow.case_url}/notes"
    assert (await flow.http.post(url, json={"note": "first"}, headers=note)).status_code == 200
    other = await flow.http.post(url, json={"note": "second"}, headers=note)
    assert other.status_code == 422
    detail = await flow.detail()
    assert [line["note"] for line in detail["timeline"] if line["kind"] == "note"] == ["first"]


async def test_merchants_list_only_their_own_cases(flow: Flow, http: httpx.AsyncClient):
    await flow.post()
    url = f"{flow.platform.url('resolution')}/v1/cases"
    own = await http.get(url, headers=MERCHANT.headers(), params={"limit": 500})
    other = await http.get(url, headers=OTHER_MERCHANT.headers(), params={"limit": 500})
    assert own.status_code == other.status_code == 200
    assert flow.complaint_id in {item["complaint_id"] for item in own.json()["items"]}
    assert {item["merchant_id"] for item in own.json()["items"]} == {"m-1"}
    assert flow.complaint_id not in {item["complaint_id"] for item in other.json()["items"]}


async def test_a_storefront_sees_no_other_storefronts_case(flow: Flow, http: httpx.AsyncClient):
    await flow.post()
    response = await http.post(
        f"{flow.case_url}/appeal",
        json={"reason": "x"},
        headers={**STOREFRONT.headers(), "X-Customer-ID": f"cust-{uuid.uuid4().hex[:6]}"},
    )
    assert response.status_code == 404
