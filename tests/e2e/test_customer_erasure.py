"""customer.erased on the real stack: triage and notification forget the customer, for good.

Intake publishes one customer.erased per complaint of the customer; these tests publish it to
the run's intake topic as intake's relay would, then read each service's rows. Triage keeps a
pseudonym in place of the customer id, notification keeps no contact, resolution never held
either; replays and later events do not bring the customer back.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from shared.events import ComplaintReceived, CustomerErased, EventEnvelope, Topic, new_event
from shared.events.registry import decode_event
from shared.events.topics import qualified_topic
from shared.pii import DEV_ONLY_PII_KEY, PiiKeyring, customer_pseudonym, seal
from tests.support.complaints import complaint_body, post_complaint, register_pii
from tests.support.kafka import publish_event, read_all
from tests.support.platform import Platform
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.stack, pytest.mark.e2e]

DEADLINE_S = 30
# The platform under test seals and opens with the development key.
PLATFORM_KEYRING = PiiKeyring.single(DEV_ONLY_PII_KEY)
CONSUMERS = ("triage", "notification")


def erasure_event(
    complaint_id: uuid.UUID, complaint_number: str, customer_id: str
) -> EventEnvelope[CustomerErased]:
    """customer.erased for one complaint, as intake emits it."""
    return new_event(
        CustomerErased(
            complaint_number=complaint_number,
            customer_id=customer_id,
            erased_at=datetime.now(UTC),
        ),
        producer="intake_service",
        complaint_id=complaint_id,
        correlation_id=f"erase-{uuid.uuid4().hex[:10]}",
    )


async def publish_to_intake_topic(platform: Platform, envelope: EventEnvelope[Any]) -> None:
    config = platform.stack.config
    topic = qualified_topic(Topic.INTAKE_COMPLAINT, config.topic_prefix)
    await publish_event(config.kafka_bootstrap, topic, envelope)


async def handled_by_consumers(admin_db: asyncpg.Connection, event_id: uuid.UUID) -> bool:
    """True once triage and notification have both taken the event (their inbox rows)."""
    for schema in CONSUMERS:
        row = await admin_db.fetchval(
            f"SELECT count(*) FROM {schema}.inbox WHERE event_id = $1", event_id
        )
        if not row:
            return False
    return True


async def wait_handled(admin_db: asyncpg.Connection, event_id: uuid.UUID, what: str) -> None:
    await wait_until(
        lambda: handled_by_consumers(admin_db, event_id), timeout_s=DEADLINE_S, what=what
    )


async def customer_rows(admin_db: asyncpg.Connection, complaint_id: uuid.UUID) -> dict[str, Any]:
    """What each service holds about the complaint's customer."""
    recipient = await admin_db.fetchrow(
        "SELECT customer_id, sealed_contact FROM notification.recipients WHERE complaint_id = $1",
        complaint_id,
    )
    return {
        "triage": await admin_db.fetchval(
            "SELECT customer_id FROM triage.triages WHERE complaint_id = $1", complaint_id
        ),
        "recipient": dict(recipient) if recipient else None,
        "erasures": [
            await admin_db.fetchval(
                f"SELECT count(*) FROM {schema}.erasures WHERE complaint_id = $1", complaint_id
            )
            for schema in CONSUMERS
        ],
    }


async def acknowledged(http: httpx.AsyncClient, platform: Platform, complaint_id: str) -> bool:
    response = await http.get(f"{platform.url('notification')}/v1/complaints/{complaint_id}")
    return response.status_code == 200 and any(
        n["status"] == "recorded" for n in response.json()["notifications"]
    )


async def received_event(platform: Platform, complaint_id: uuid.UUID) -> EventEnvelope[Any]:
    """The complaint.received intake published for a complaint."""
    config = platform.stack.config
    topic = qualified_topic(Topic.INTAKE_COMPLAINT, config.topic_prefix)
    for message in await read_all(config.kafka_bootstrap, topic):
        if (
            message.header("complaint_id") == str(complaint_id)
            and message.header("event_type") == ComplaintReceived.event_type
        ):
            return decode_event(message.value)
    raise AssertionError(f"no complaint.received for {complaint_id}")


class TestCustomerErased:
    async def test_erasure_leaves_no_customer_data_in_any_service_and_is_idempotent(
        self, platform: Platform, http: httpx.AsyncClient, admin_db: asyncpg.Connection
    ):
        marker = uuid.uuid4().hex[:8]
        customer_id = f"cust-erase-{marker}"
        body = complaint_body(40)
        body["customer"] = {
            **body["customer"],
            "customer_id": customer_id,
            "name": f"抹除{marker}",
            "email": f"erase.{marker}@example.test",
        }
        response = await post_complaint(http, platform.url("intake"), body)
        assert response.status_code == 201, response.text
        receipt = response.json()
        complaint_id = uuid.UUID(receipt["complaint_id"])
        await wait_until(
            lambda: acknowledged(http, platform, str(complaint_id)),
            timeout_s=DEADLINE_S,
            what="acknowledgement",
        )
        before = await customer_rows(admin_db, complaint_id)
        assert before["triage"] == customer_id
        assert before["recipient"]["customer_id"] == customer_id
        assert before["recipient"]["sealed_contact"]

        erased = erasure_event(complaint_id, receipt["complaint_number"], customer_id)
        await publish_to_intake_topic(platform, erased)
        await wait_handled(admin_db, erased.event_id, "customer.erased handled")

        pseudonym = customer_pseudonym(customer_id)
        after = await customer_rows(admin_db, complaint_id)
        assert after["triage"] == pseudonym
        assert after["recipient"] == {"customer_id": pseudonym, "sealed_contact": None}
        assert after["erasures"] == [1, 1]
        view = await http.get(f"{platform.url('notification')}/v1/complaints/{complaint_id}")
        assert view.status_code == 200, view.text
        assert view.json()["recipient"] == {
            "customer_id": pseudonym,
            "preferred_channel": "sms",
            "phone": None,
            "email": None,
        }
        await self.assert_no_customer_value_left(
            admin_db,
            complaint_id,
            [customer_id, *(body["customer"][k] for k in ("name", "phone", "email"))],
        )

        # The same event redelivered, and a second erasure of the same complaint: no change.
        again = erasure_event(complaint_id, receipt["complaint_number"], customer_id)
        await publish_to_intake_topic(platform, erased)
        await publish_to_intake_topic(platform, again)
        await wait_handled(admin_db, again.event_id, "second customer.erased handled")
        assert await customer_rows(admin_db, complaint_id) == after

        # complaint.received replayed as a new event (a dead-letter replay after the inbox
        # forgot the first): the customer does not come back.
        original = await received_event(platform, complaint_id)
        replayed = original.model_copy(update={"event_id": uuid.uuid4()})
        await publish_to_intake_topic(platform, replayed)
        await wait_handled(admin_db, replayed.event_id, "replayed complaint.received handled")
        assert await customer_rows(admin_db, complaint_id) == after

    async def test_a_complaint_received_after_its_erasure_stores_no_customer_data(
        self, platform: Platform, admin_db: asyncpg.Connection
    ):
        # As when complaint.received was dead-lettered, then replayed after the erasure.
        marker = uuid.uuid4().hex[:8]
        complaint_id = uuid.uuid4()
        customer_id = f"cust-late-{marker}"
        number = f"202611-9{int(marker, 16) % 100_000:05d}"
        contact = {"name": f"迟到{marker}", "email": f"late.{marker}@example.test"}
        register_pii(*contact.values())
        erased = erasure_event(complaint_id, number, customer_id)
        received = new_event(
            ComplaintReceived(
                complaint_number=number,
                customer_id=customer_id,
                sealed_contact=seal(contact, PLATFORM_KEYRING),
                preferred_contact_channel="email",
                merchant_id="m-erase",
                channel="app",
                target="product",
                description="Kettle arrived cracked.",
                received_at=datetime.now(UTC),
            ),
            producer="intake_service",
            complaint_id=complaint_id,
            correlation_id=f"late-{marker}",
        )
        await publish_to_intake_topic(platform, erased)
        await publish_to_intake_topic(platform, received)
        await wait_handled(admin_db, received.event_id, "late complaint.received handled")

        rows = await customer_rows(admin_db, complaint_id)
        assert rows == {
            "triage": customer_pseudonym(customer_id),
            "recipient": None,
            "erasures": [1, 1],
        }
        await self.assert_no_customer_value_left(
            admin_db, complaint_id, [customer_id, *contact.values()]
        )

    async def assert_no_customer_value_left(
        self, admin_db: asyncpg.Connection, complaint_id: uuid.UUID, values: list[str]
    ) -> None:
        """No row about the complaint in triage, resolution or notification holds the values."""
        tables = {
            "triage.triages": "complaint_id",
            "resolution.cases": "complaint_id",
            "notification.recipients": "complaint_id",
            "notification.notifications": "complaint_id",
        }
        for table, key in tables.items():
            for row in await admin_db.fetch(
                f"SELECT row_to_json(t)::text AS doc FROM {table} t WHERE {key} = $1",
                complaint_id,
            ):
                found = [n for n, value in enumerate(values) if value in row["doc"]]
                assert not found, f"{table} still holds customer value(s) #{found}"
