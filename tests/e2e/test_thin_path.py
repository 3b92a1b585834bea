"""A complaint through all four services, each a separate process."""

import asyncio
import json
import uuid

import asyncpg
import httpx
import pytest

from services.catalog import CATALOG
from shared.events import Topic, dlq_topic
from shared.messaging import create_producer
from tests.support.auth import STOREFRONT
from tests.support.complaints import complaint_body, post_complaint
from tests.support.kafka import read_all
from tests.support.platform import Platform
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.e2e]

ACK_DEADLINE_S = 30


async def acknowledgement(
    http: httpx.AsyncClient, platform: Platform, complaint_id: str
) -> dict | None:
    response = await http.get(f"{platform.url('notification')}/v1/complaints/{complaint_id}")
    if response.status_code != 200:
        return None
    acks = [n for n in response.json()["notifications"] if n["kind"] == "acknowledgement"]
    return acks[0] if acks and acks[0]["status"] == "recorded" else None


class TestThinPath:
    async def test_posted_complaint_is_acknowledged_within_the_deadline(self, platform, http):
        correlation_id = f"e2e-{uuid.uuid4().hex[:10]}"
        response = await post_complaint(
            http, platform.url("intake"), complaint_body(1), **{"X-Correlation-ID": correlation_id}
        )
        assert response.status_code == 201, response.text
        receipt = response.json()
        assert receipt["complaint_number"].count("-") == 1
        assert response.headers["x-correlation-id"] == correlation_id
        complaint_id = receipt["complaint_id"]

        ack = await wait_until(
            lambda: acknowledgement(http, platform, complaint_id),
            timeout_s=ACK_DEADLINE_S,
            what="acknowledgement",
        )
        assert ack["channel"] == "sms"
        assert receipt["complaint_number"] in ack["body"]

        triage = (await http.get(f"{platform.url('triage')}/v1/complaints/{complaint_id}")).json()
        assert (triage["category"], triage["priority"], triage["provisional"]) == (
            "product_quality",
            "general",
            True,
        )
        case = (await http.get(f"{platform.url('resolution')}/v1/complaints/{complaint_id}")).json()
        assert case["status"] == "processing"
        assert case["first_response_due_at"] == triage["first_response_due_at"] == ack["respond_by"]
        view = (await http.get(f"{platform.url('intake')}/v1/complaints/{complaint_id}")).json()
        assert view["contact"]["phone"] == "138****8000", (
            "contact is masked outside the customer's view"
        )

    async def test_every_service_logs_the_complaint_and_correlation_ids(self, platform, http):
        correlation_id = f"trace-{uuid.uuid4().hex[:10]}"
        response = await post_complaint(
            http, platform.url("intake"), complaint_body(2), **{"X-Correlation-ID": correlation_id}
        )
        complaint_id = response.json()["complaint_id"]
        await wait_until(
            lambda: acknowledgement(http, platform, complaint_id), timeout_s=ACK_DEADLINE_S
        )
        await asyncio.sleep(0.5)  # log lines are flushed by the reader threads
        for name in ("intake", "triage", "resolution", "notification"):
            lines = [
                json.loads(line)
                for line in platform.logs(name).splitlines()
                if correlation_id in line and line.startswith("{")
            ]
            assert lines, f"{name} logged nothing with the correlation id"
            assert all(line.get("complaint_id") == complaint_id for line in lines), name
            assert all("13800138000" not in json.dumps(line) for line in lines), "PII in logs"


class TestBadInput:
    async def count_complaints(self, admin_db: asyncpg.Connection) -> tuple[int, int]:
        complaints = await admin_db.fetchval("SELECT count(*) FROM intake.complaints")
        outbox = await admin_db.fetchval("SELECT count(*) FROM intake.outbox")
        return complaints, outbox

    @pytest.mark.parametrize(
        ("content", "field"),
        [
            (json.dumps(complaint_body(3, merchant_id="")), "merchant_id"),
            (json.dumps(complaint_body(3, channel="pigeon")), "channel"),
            (
                json.dumps(
                    {
                        **complaint_body(3),
                        "customer": {"customer_id": "c", "preferred_channel": "email"},
                    }
                ),
                "customer",
            ),
            ('{"customer": {"customer_id": ', "body"),
        ],
    )
    async def test_invalid_complaint_is_a_problem_and_stores_nothing(
        self, platform, http, admin_db, content, field
    ):
        before = await self.count_complaints(admin_db)
        response = await http.post(
            f"{platform.url('intake')}/v1/complaints",
            content=content,
            headers={"content-type": "application/json", **STOREFRONT.headers()},
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert field in [error["field"] for error in problem["errors"]], problem
        assert await self.count_complaints(admin_db) == before

    async def test_unknown_complaint_is_404_problem_everywhere(self, platform, http):
        missing = uuid.uuid4()
        for name in ("intake", "triage", "resolution", "notification"):
            response = await http.get(f"{platform.url(name)}/v1/complaints/{missing}")
            assert response.status_code == 404, name
            assert response.headers["content-type"] == "application/problem+json"


class TestIdempotency:
    async def test_same_key_same_body_returns_the_first_receipt_once(
        self, platform, http, admin_db
    ):
        key = f"idem-{uuid.uuid4()}"
        body = complaint_body(4)
        first, second = await asyncio.gather(
            post_complaint(http, platform.url("intake"), body, **{"Idempotency-Key": key}),
            post_complaint(http, platform.url("intake"), body, **{"Idempotency-Key": key}),
        )
        statuses = sorted([first.status_code, second.status_code])
        assert statuses == [201, 201], (first.text, second.text)
        assert first.json() == second.json()
        stored = await admin_db.fetchval(
            "SELECT count(*) FROM intake.complaints WHERE id = $1",
            uuid.UUID(first.json()["complaint_id"]),
        )
        assert stored == 1
        third = await post_complaint(http, platform.url("intake"), body, **{"Idempotency-Key": key})
        assert third.headers.get("idempotent-replayed") == "true"
        assert third.json() == first.json()

    async def test_same_key_different_body_is_422(self, platform, http):
        key = f"idem-{uuid.uuid4()}"
        first = await post_complaint(
            http, platform.url("intake"), complaint_body(5), **{"Idempotency-Key": key}
        )
        assert first.status_code == 201
        second = await post_complaint(
            http, platform.url("intake"), complaint_body(6), **{"Idempotency-Key": key}
        )
        assert second.status_code == 422
        assert "different request body" in second.json()["detail"]


class TestOperations:
    async def test_ready_and_metrics(self, platform, http):
        for name in ("intake", "triage", "resolution", "notification"):
            ready = await http.get(f"{platform.url(name)}/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {
                "database": "ok",
                "kafka": "ok",
                "workers": "ok",
                "outbox": "ok",
            }
            metrics = await http.get(f"{platform.url(name)}/metrics")
            assert "outbox_backlog" in metrics.text
            assert "outbox_oldest_unpublished_age_seconds" in metrics.text

    async def test_a_poison_message_goes_to_the_dlq_and_the_service_keeps_going(
        self, platform, http
    ):
        config = platform.stack.config
        topic = f"{config.topic_prefix}{Topic.INTAKE_COMPLAINT.value}"
        producer = create_producer(config.kafka_bootstrap, client_id="poison")
        await producer.start()
        poison_key = uuid.uuid4().hex.encode()
        try:
            await producer.send_and_wait(
                topic, value=b'{"event_type": "complaint.received"}', key=poison_key
            )
        finally:
            await producer.stop()
        response = await post_complaint(http, platform.url("intake"), complaint_body(7))
        complaint_id = response.json()["complaint_id"]
        await wait_until(
            lambda: acknowledgement(http, platform, complaint_id), timeout_s=ACK_DEADLINE_S
        )

        # Every service that reads intake's topic dead-letters the poison on its own.
        readers = sorted(
            f"{entry.name}-service"
            for entry in CATALOG
            if Topic.INTAKE_COMPLAINT in entry.topics_in
        )

        async def dead_letters() -> list | None:
            dead = await read_all(config.kafka_bootstrap, dlq_topic(topic))
            mine = [m for m in dead if m.key == poison_key]
            return mine if len(mine) >= len(readers) else None

        dead = await wait_until(dead_letters, timeout_s=ACK_DEADLINE_S, what="poison in DLQ")
        consumers = sorted(m.header("dlq.consumer") for m in dead)
        assert consumers == readers, "each consumer dead-letters it once"
        for name in ("triage", "resolution", "notification"):
            assert (await http.get(f"{platform.url(name)}/readyz")).status_code == 200
