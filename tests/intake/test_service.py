"""Intake's service functions on the real database (no HTTP, no broker).

What only the database can show: one customer's concurrent submissions are serialised, each
decision lands in the rows it should, and the customer's view ignores late or unknown events.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from intake_service import service
from intake_service.config import Settings
from intake_service.schemas import ComplaintCreate
from services.catalog import BY_NAME
from shared.db import create_engine, create_sessionmaker, transaction
from shared.events import CaseOpened, ComplaintTriaged, new_event
from shared.events.envelope import EventEnvelope
from tests.support.complaints import complaint_body
from tests.support.stack import StackUnderTest

pytestmark = pytest.mark.stack

SETTINGS = Settings()


@pytest.fixture(scope="module")
async def sessions(stack: StackUnderTest) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions as the intake service's own database role."""
    engine = create_engine(stack.config.service_database_url(BY_NAME["intake"]), pool_size=8)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def request_for(customer: str, n: int = 1, **overrides: Any) -> ComplaintCreate:
    """A complete complaint of `customer`."""
    body = complaint_body(n, **overrides)
    body["customer"]["customer_id"] = customer
    return ComplaintCreate.model_validate(body)


async def receive(
    sessions: async_sessionmaker[AsyncSession], request: ComplaintCreate
) -> service.ComplaintReceipt:
    async with transaction(sessions) as session:
        return await service.receive_complaint(
            session,
            request=request,
            storefront_id="sf-test",
            correlation_id=f"svc-{uuid.uuid4().hex[:8]}",
            settings=SETTINGS,
        )


async def test_concurrent_submissions_of_one_problem_make_one_complaint(sessions):
    customer = f"svc-race-{uuid.uuid4().hex[:8]}"
    request = request_for(customer)
    receipts = await asyncio.gather(*(receive(sessions, request) for _ in range(8)))
    assert len({r.complaint_id for r in receipts}) == 1
    assert sum(not r.duplicate_of_open for r in receipts) == 1


async def test_different_customers_are_never_linked(sessions):
    order = complaint_body(1)["order"]
    first = request_for(f"svc-a-{uuid.uuid4().hex[:8]}", order=order)
    second = request_for(f"svc-b-{uuid.uuid4().hex[:8]}", order=order)
    receipts = await asyncio.gather(receive(sessions, first), receive(sessions, second))
    assert receipts[0].complaint_id != receipts[1].complaint_id
    assert not any(r.duplicate_of_open for r in receipts)


async def test_a_complaint_needing_information_stores_the_list_and_its_deadline(sessions):
    request = request_for(
        f"svc-info-{uuid.uuid4().hex[:8]}",
        demands=[{"type": "compensation"}],
        target="staff",
    )
    receipt = await receive(sessions, request)
    assert receipt.status == "needs_info"
    async with transaction(sessions) as session:
        row = await service.repository.get_complaint(session, complaint_id=receipt.complaint_id)
    assert row is not None
    assert [m["field"] for m in row.missing] == ["demands.compensation.amount", "occurred_at"]
    assert row.info_due_at == row.received_at + timedelta(hours=SETTINGS.info_answer_within_hours)
    assert (row.visible_state, row.next_step) == (
        "pending_acceptance",
        "customer_supplies_information",
    )


async def submit(
    sessions: async_sessionmaker[AsyncSession], request: ComplaintCreate, *, key: str
) -> service.Submission:
    async with transaction(sessions) as session:
        return await service.submit_complaint(
            session,
            request=request,
            idempotency_key=key,
            caller="storefront:sf-test",
            storefront_id="sf-test",
            correlation_id=f"svc-{uuid.uuid4().hex[:8]}",
            settings=SETTINGS,
        )


async def stored_response(sessions: async_sessionmaker[AsyncSession], key: str) -> Any:
    async with transaction(sessions) as session:
        return await service.repository.get_idempotency_record(
            session, caller="storefront:sf-test", key=key
        )


async def complaints_of(sessions: async_sessionmaker[AsyncSession], customer: str) -> list[Any]:
    async with transaction(sessions) as session:
        return await service.repository.complaints_of_customer_for_update(
            session, customer_id=customer, storefront_id=None
        )


class TestSubmitComplaint:
    async def test_the_key_is_stored_with_the_receipt_and_its_number(self, sessions):
        key = f"svc-key-{uuid.uuid4().hex}"
        submission = await submit(sessions, request_for(f"svc-key-{uuid.uuid4().hex[:8]}"), key=key)
        record = await stored_response(sessions, key)
        assert submission.status_code == 201
        assert submission.body["complaint_number"] != ""
        assert (record.response_status, record.response_body) == (201, submission.body)

    async def test_a_taken_key_rolls_the_new_complaint_back(self, sessions):
        key = f"svc-key-{uuid.uuid4().hex}"
        first = await submit(sessions, request_for(f"svc-key-{uuid.uuid4().hex[:8]}"), key=key)
        other_customer = f"svc-key-{uuid.uuid4().hex[:8]}"
        with pytest.raises(service.IdempotencyKeyTakenError):
            await submit(sessions, request_for(other_customer), key=key)
        assert await complaints_of(sessions, other_customer) == []
        assert (await stored_response(sessions, key)).response_body == first.body

    async def test_a_repeat_of_an_open_complaint_stores_its_200_receipt(self, sessions):
        request = request_for(f"svc-key-{uuid.uuid4().hex[:8]}")
        first = await submit(sessions, request, key=f"svc-key-{uuid.uuid4().hex}")
        key = f"svc-key-{uuid.uuid4().hex}"
        repeat = await submit(sessions, request, key=key)
        record = await stored_response(sessions, key)
        assert (repeat.status_code, repeat.body["complaint_id"]) == (
            200,
            first.body["complaint_id"],
        )
        assert (record.response_status, record.response_body) == (200, repeat.body)

    async def test_an_expired_key_is_taken_again(self, sessions):
        key = f"svc-key-{uuid.uuid4().hex}"
        await submit(sessions, request_for(f"svc-key-{uuid.uuid4().hex[:8]}"), key=key)
        async with transaction(sessions) as session:
            await session.execute(
                text(
                    "UPDATE intake.idempotency_keys SET expires_at = now() - interval '1 second'"
                    " WHERE caller = 'storefront:sf-test' AND key = :key"
                ),
                {"key": key},
            )
        second = await submit(sessions, request_for(f"svc-key-{uuid.uuid4().hex[:8]}"), key=key)
        assert (await stored_response(sessions, key)).response_body == second.body


def view_event(event: EventEnvelope[Any], occurred_at: datetime) -> EventEnvelope[Any]:
    """The event as if it had happened at `occurred_at`."""
    return event.model_copy(update={"occurred_at": occurred_at})


async def test_the_view_takes_the_newest_event_and_ignores_late_or_unknown_ones(sessions):
    receipt = await receive(sessions, request_for(f"svc-view-{uuid.uuid4().hex[:8]}"))
    now = datetime.now(UTC)
    due = now + timedelta(hours=2)
    opened = new_event(
        CaseOpened(
            case_id=uuid.uuid4(),
            complaint_number=receipt.complaint_number,
            merchant_id="m-1",
            priority="urgent",
            status="processing",
            first_response_due_at=due,
            opened_at=now,
        ),
        producer="resolution_service",
        complaint_id=receipt.complaint_id,
        correlation_id="c-1",
    )
    triaged_earlier = new_event(
        ComplaintTriaged(
            complaint_number=receipt.complaint_number,
            merchant_id="m-1",
            category="product_quality",
            priority="urgent",
            team="merchant_management",
            provisional=True,
            first_response_due_at=now + timedelta(hours=9),
            triaged_at=now,
        ),
        producer="triage_service",
        complaint_id=receipt.complaint_id,
        correlation_id="c-1",
    )
    unknown = opened.model_copy(update={"event_type": "case.teleported"})
    stranger = opened.model_copy(update={"complaint_id": uuid.uuid4()})
    async with transaction(sessions) as session:
        assert await service.apply_event_to_view(
            session, view_event(opened, now + timedelta(seconds=2))
        )
        # The triage event happened earlier but arrives later: its step only.
        assert await service.apply_event_to_view(
            session, view_event(triaged_earlier, now + timedelta(seconds=1))
        )
        assert not await service.apply_event_to_view(session, unknown)
        assert not await service.apply_event_to_view(session, stranger)
    async with transaction(sessions) as session:
        row = await service.repository.get_complaint(session, complaint_id=receipt.complaint_id)
        steps = await service.repository.timeline_of(session, complaint_id=receipt.complaint_id)
    assert row is not None
    assert row.visible_state == "processing"
    assert row.next_step_due_at == due
    assert [s.code for s in steps] == ["received", "triaged", "case_opened"]
