"""Triage end to end: intake, triage and resolution as processes on a platform of their own.

The platform gets its own database and topics on the run's Postgres and Kafka, and settings
that make the rules quick to reach: groups of 3 customers, SLA budgets of seconds (the same
settings production uses, in fractions of an hour), escalation steps 3 seconds apart. So its
group complaints and SLA announcements never touch the shared e2e platform's complaints.
"""

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest

from services.catalog import BY_NAME
from shared.events import Topic
from tests.support.auth import MERCHANT, bearer
from tests.support.complaints import complaint_body, post_complaint
from tests.support.kafka import read_all
from tests.support.platform import Platform, running_platform, service_test_env
from tests.support.stack import StackUnderTest, create_test_stack, destroy_test_stack
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.e2e]

FLOW_PORT_OFFSET = 12_000  # 20001-20003: beside `make up`, the e2e and the faults platforms
SECOND_H = 1 / 3600
# General complaints: first response 8 s (warning 6.4 s), resolution 12 s (warning 9.6 s).
FIRST_RESPONSE_S = {"urgent": 30, "important": 60, "general": 8}
RESOLUTION_S = {"urgent": 60, "important": 120, "general": 12}
ESCALATION_STEP_S = 3
# Every announcement of a general complaint is due by the head's step: 8 + 0 + 3 + 3 s.
LAST_ANNOUNCEMENT_S = 14
GROUP_THRESHOLD = 3
LOST_PARCEL = "快递一个星期了还没到，物流信息一直不更新，包裹是不是丢了"
ANNOUNCEMENTS = 7  # two warnings, two breaches, three escalation steps


def flow_env(name: str) -> dict[str, str]:
    """Test settings, plus quick triage rules and consumer groups of this platform's own."""
    prefix = BY_NAME[name].env_prefix
    env = {**service_test_env(name), f"{prefix}CONSUMER_GROUP": f"{name}-service-triage-flow"}
    if name == "triage":
        env |= {
            "TRIAGE_GROUP_THRESHOLD": str(GROUP_THRESHOLD),
            "TRIAGE_GROUP_WINDOW_HOURS": "1",
            "TRIAGE_REPEAT_THRESHOLD": "2",
            "TRIAGE_FIRST_RESPONSE_HOURS": json.dumps(
                {k: v * SECOND_H for k, v in FIRST_RESPONSE_S.items()}
            ),
            "TRIAGE_RESOLUTION_HOURS": json.dumps(
                {k: v * SECOND_H for k, v in RESOLUTION_S.items()}
            ),
            "TRIAGE_ESCALATION_DELAY_MINUTES": json.dumps(
                [0, ESCALATION_STEP_S / 60, ESCALATION_STEP_S / 60]
            ),
            "TRIAGE_TIMER_POLL_INTERVAL_SECONDS": "0.2",
        }
    return env


@dataclass
class Flow:
    """The platform and the stack it runs on."""

    stack: StackUnderTest
    platform: Platform

    def url(self, name: str) -> str:
        return self.platform.url(name)

    @property
    def triage_topic(self) -> str:
        return f"{self.stack.config.topic_prefix}{Topic.TRIAGE_COMPLAINT.value}"


@pytest.fixture(scope="module")
def flow(stack: StackUnderTest) -> Iterator[Flow]:
    """Intake, triage and resolution on a database and topics of their own."""
    private = create_test_stack(stack.config)
    try:
        with running_platform(
            private,
            port_offset=FLOW_PORT_OFFSET,
            label="triage-flow",
            services=("intake", "triage", "resolution"),
            service_env=flow_env,
        ) as platform:
            yield Flow(stack=private, platform=platform)
    finally:
        destroy_test_stack(private)


@pytest.fixture
async def flow_db(flow: Flow) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to the flow platform's database."""
    conn = await asyncpg.connect(flow.stack.admin_dsn())
    try:
        yield conn
    finally:
        await conn.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def body(n: int, **overrides: Any) -> dict[str, Any]:
    """A complete complaint with its own customer, merchant and SKU unless told otherwise."""
    made = complaint_body(n, **{"merchant_id": unique("m"), **overrides})
    made["customer"]["customer_id"] = unique("cust")
    made["order"]["items"][0]["sku"] = unique("SKU")
    return made


async def post(http: httpx.AsyncClient, flow: Flow, made: dict[str, Any]) -> dict[str, Any]:
    response = await post_complaint(http, flow.url("intake"), made)
    assert response.status_code == 201, response.text
    receipt: dict[str, Any] = response.json()
    return receipt


async def triaged(http: httpx.AsyncClient, flow: Flow, complaint_id: str) -> dict[str, Any]:
    async def seen() -> dict[str, Any] | None:
        response = await http.get(f"{flow.url('triage')}/v1/complaints/{complaint_id}")
        return response.json() if response.status_code == 200 else None

    view: dict[str, Any] = await wait_until(seen, timeout_s=30, what=f"triage of {complaint_id}")
    return view


async def triage_events(flow: Flow, complaint_id: str) -> list[dict[str, Any]]:
    """The complaint's events on triage.complaint.v1, as consumers read them."""
    messages = await read_all(flow.stack.config.kafka_bootstrap, flow.triage_topic)
    events = [json.loads(m.value or b"{}") for m in messages if m.key == complaint_id.encode()]
    return [{"event_id": e["event_id"], "type": e["event_type"], **e["payload"]} for e in events]


async def test_the_description_decides_the_category_and_reaches_the_event(flow, http):
    made = body(1, category_hint="product_quality", target="logistics", description=LOST_PARCEL)
    receipt = await post(http, flow, made)
    view = await triaged(http, flow, receipt["complaint_id"])
    assert (view["category"], view["team"]) == ("logistics", "logistics")
    assert view["subcategory"] in ("lost", "delayed")
    assert view["reasons"]
    assert view["signals"]

    async def published() -> list[dict[str, Any]]:
        events = await triage_events(flow, receipt["complaint_id"])
        return [e for e in events if e["type"] == "complaint.triaged"]

    (event,) = await wait_until(published, timeout_s=30, what="complaint.triaged on Kafka")
    assert (event["category"], event["subcategory"]) == ("logistics", view["subcategory"])
    assert event["confidence"] == view["confidence"]
    assert event["reasons"] == view["reasons"]
    assert event["responsibility"] == view["responsibility"]
    assert event["resolution_due_at"] is not None
    assert event["manual_review"] is False


async def test_the_kth_customer_makes_a_group_raising_and_linking_the_earlier_ones(flow, http):
    merchant = unique("m")
    receipts = []
    for n in range(GROUP_THRESHOLD):
        receipts.append(await post(http, flow, body(10 + n, merchant_id=merchant)))
        # One after the other, so the earlier ones are triaged general before the group forms.
        await triaged(http, flow, receipts[-1]["complaint_id"])
    ids = [receipt["complaint_id"] for receipt in receipts]

    async def all_linked() -> list[dict[str, Any]] | None:
        views = [await triaged(http, flow, complaint_id) for complaint_id in ids]
        return views if all(v["group_key"] == f"merchant:{merchant}" for v in views) else None

    views = await wait_until(all_linked, timeout_s=30, what="the group linked")
    assert {v["priority"] for v in views} == {"urgent"}
    assert set(views[0]["linked_complaints"]) == set(ids[1:])
    for earlier in ids[:-1]:

        async def retriaged(complaint_id: str = earlier) -> list[dict[str, Any]]:
            events = await triage_events(flow, complaint_id)
            return [e for e in events if e["type"] == "complaint.retriaged"]

        (raised,) = await wait_until(retriaged, timeout_s=30, what="complaint.retriaged")
        assert (raised["cause"], raised["previous_priority"], raised["priority"]) == (
            "group_complaint",
            "general",
            "urgent",
        )
        assert raised["reason"].startswith("group_complaint: 3 customers complained about")


async def test_an_agent_of_the_team_retriages_and_the_deadlines_follow(flow, http, flow_db):
    receipt = await post(http, flow, body(20, target="logistics", description=LOST_PARCEL))
    complaint_id = receipt["complaint_id"]
    before = await triaged(http, flow, complaint_id)
    assert before["team"] == "logistics"
    url = f"{flow.url('triage')}/v1/complaints/{complaint_id}/retriage"
    change = {"subcategory": "misdelivered", "priority": "urgent", "reason": "sent to locker 7"}

    merchant = await http.post(url, json=change, headers=MERCHANT.headers())
    other_team = await http.post(url, json=change, headers=bearer("test-agent"))
    assert merchant.status_code == 403
    assert other_team.status_code == 404
    assert other_team.json()["detail"] == f"no triage for complaint {complaint_id}"

    answer = await http.post(url, json=change, headers=bearer("test-agent-other"))
    assert answer.status_code == 200, answer.text
    after = answer.json()
    assert (after["subcategory"], after["priority"], after["provisional"]) == (
        "misdelivered",
        "urgent",
        False,
    )
    assert after["retriaged_by"] == "agent:test-agent-other"
    received_at = datetime.fromisoformat(before["received_at"])
    first_due = datetime.fromisoformat(after["first_response_due_at"])
    assert (first_due - received_at).total_seconds() == pytest.approx(FIRST_RESPONSE_S["urgent"])
    assert after["first_response_due_at"] != before["first_response_due_at"]

    async def retriaged() -> list[dict[str, Any]]:
        return [
            e for e in await triage_events(flow, complaint_id) if e["type"] == "complaint.retriaged"
        ]

    (event,) = await wait_until(retriaged, timeout_s=30, what="complaint.retriaged")
    assert (event["cause"], event["previous_subcategory"], event["subcategory"]) == (
        "manual",
        before["subcategory"],
        "misdelivered",
    )
    again = await http.post(url, json=change, headers=bearer("test-agent-other"))
    assert again.status_code == 200
    # The outbox row commits with the answer: a second event would be there already.
    emitted = await flow_db.fetchval(
        "SELECT count(*) FROM triage.outbox WHERE message_key = $1 "
        "AND event_type = 'complaint.retriaged'",
        complaint_id,
    )
    assert emitted == 1

    queue = await http.get(f"{flow.url('triage')}/v1/queues/logistics?limit=200")
    assert queue.status_code == 200
    listed = {item["complaint_id"]: item for item in queue.json()["items"]}
    assert listed[complaint_id]["priority"] == "urgent"


async def test_a_withdrawn_complaint_stops_its_clocks(flow, http):
    receipt = await post(http, flow, body(30))
    complaint_id = receipt["complaint_id"]
    await triaged(http, flow, complaint_id)
    withdrawal = await http.post(
        f"{flow.url('intake')}/v1/complaints/{complaint_id}/withdrawal",
        json={"reason": "solved with the shop"},
    )
    assert withdrawal.status_code == 200, withdrawal.text

    async def stopped() -> dict[str, Any] | None:
        view = await triaged(http, flow, complaint_id)
        return view if view["stop_reason"] == "withdrawn" else None

    await wait_until(stopped, timeout_s=30, what="clocks stopped")
    queue = await http.get(f"{flow.url('triage')}/v1/queues/merchant_management?limit=200")
    assert complaint_id not in {item["complaint_id"] for item in queue.json()["items"]}


@pytest.mark.chaos
async def test_kill_9_while_warnings_and_breaches_are_due_each_is_announced_exactly_once(
    flow: Flow, http: httpx.AsyncClient, flow_db: asyncpg.Connection
):
    ids = []
    for n in range(12):
        ids.append((await post(http, flow, body(40 + n)))["complaint_id"])
    posted_by = time.monotonic()
    for complaint_id in ids:
        view = await triaged(http, flow, complaint_id)
        assert view["priority"] == "general", view["reasons"]

    async def announced() -> int:
        return int(
            await flow_db.fetchval(
                "SELECT count(*) FROM triage.outbox WHERE message_key = ANY($1::text[]) "
                "AND event_type <> 'complaint.triaged'",
                ids,
            )
        )

    # Kill as soon as the first warnings are out: the rest fall due while triage is dead.
    await wait_until(announced, timeout_s=30, interval_s=0.05, what="the first warning")
    flow.platform.kill("triage")
    assert await announced() < len(ids) * ANNOUNCEMENTS, "the kill must leave some due"
    # Time has to pass for every deadline to fall due while the process is down.
    await asyncio.sleep(max(0.0, posted_by + LAST_ANNOUNCEMENT_S + 1 - time.monotonic()))
    await asyncio.to_thread(flow.platform.restart, "triage")

    async def everything_announced() -> bool:
        return await announced() >= len(ids) * ANNOUNCEMENTS

    await wait_until(everything_announced, timeout_s=60, what="every announcement")
    rows = await flow_db.fetch(
        "SELECT message_key, event_type, body FROM triage.outbox "
        "WHERE message_key = ANY($1::text[]) AND event_type <> 'complaint.triaged'",
        ids,
    )
    made = Counter(
        _announcement(row["message_key"], row["event_type"], row["body"]) for row in rows
    )
    assert set(made.values()) == {1}, [key for key, count in made.items() if count > 1]
    assert len(made) == len(ids) * ANNOUNCEMENTS

    async def on_the_topic() -> bool:
        messages = await read_all(flow.stack.config.kafka_bootstrap, flow.triage_topic)
        wanted = {complaint_id.encode() for complaint_id in ids}
        events = {
            json.loads(m.value or b"{}")["event_id"]: m
            for m in messages
            if m.key in wanted and m.header("event_type") != "complaint.triaged"
        }
        return len(events) == len(ids) * ANNOUNCEMENTS

    # The relay may publish an event twice after a crash (same event id, deduplicated by
    # consumers' inboxes); what must hold is one event per announcement, all of them out.
    await wait_until(on_the_topic, timeout_s=30, what="every announcement on Kafka")


def _announcement(complaint_id: str, event_type: str, body: str) -> tuple[str, str, str]:
    payload = json.loads(body)["payload"]
    return complaint_id, event_type, str(payload.get("clock") or payload.get("level"))
