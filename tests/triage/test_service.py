"""Triage's service functions on the real database (no HTTP, no broker, no processes).

What only the database shows: the decision lands in the row and the event together, groups are
seen even when their members arrive at once, a re-triage moves the SLA timer, the timer's
announcements are made once, pauses and stops move or cancel it, and erasure reaches the
customer's words wherever triage kept them. Every test uses its own merchant, SKU and customer,
so the counts of one never reach another.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.catalog import BY_NAME
from shared.auth import Principal, Role
from shared.clock import ManualClock, using_clock
from shared.db import create_engine, create_sessionmaker, transaction
from shared.errors import ConflictError, NotFoundError, UnprocessableError
from shared.events import (
    ComplaintReceived,
    CustomerErased,
    Demand,
    EventEnvelope,
    OrderItem,
    OrderRef,
    new_event,
)
from shared.events.vocabulary import Priority
from shared.timers import PENDING, Timer
from tests.support.stack import StackUnderTest
from triage_service import repository, service
from triage_service.config import Settings
from triage_service.models import corrections, metadata, outbox, timers, triages

pytestmark = pytest.mark.stack

SETTINGS = Settings(group_threshold=3, group_window_hours=1, repeat_threshold=2)
LOST_PARCEL = "快递一直没到，物流信息一周没更新了，包裹是不是丢了"
BURNT = "The kettle exploded and my hand got burnt, I had to go to hospital."


@pytest.fixture(scope="module")
async def sessions(stack: StackUnderTest) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions as the triage service's own database role, with the classifier trained."""
    engine = create_engine(stack.config.service_database_url(BY_NAME["triage"]), pool_size=8)
    sessions = create_sessionmaker(engine)
    async with transaction(sessions) as session:
        await service.train_classifier(session)
    try:
        yield sessions
    finally:
        await engine.dispose()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def received(
    *,
    merchant_id: str,
    customer_id: str,
    description: str = LOST_PARCEL,
    sku: str | None = None,
    received_at: datetime | None = None,
    target: str = "logistics",
    **overrides: Any,
) -> EventEnvelope[ComplaintReceived]:
    """A complaint.received as intake publishes it."""
    at = received_at or datetime.now(UTC)
    payload = ComplaintReceived(
        complaint_number=f"202603-{uuid.uuid4().int % 10**6:06d}",
        customer_id=customer_id,
        sealed_contact="k1.c2VhbGVk",
        preferred_contact_channel="sms",
        merchant_id=merchant_id,
        channel="app",
        target=target,
        description=description,
        demands=[Demand(type="refund", amount=Decimal("120"))],
        received_at=at,
        order=OrderRef(
            number=unique("order"),
            amount=Decimal("120"),
            items=[OrderItem(sku=sku or unique("sku"), name="kettle", unit_price=Decimal("120"))],
        ),
        **overrides,
    )
    return new_event(
        payload, producer="intake_service", complaint_id=uuid.uuid4(), correlation_id="svc-test"
    )


async def triage(
    sessions: async_sessionmaker[AsyncSession],
    event: EventEnvelope[ComplaintReceived],
    settings: Settings = SETTINGS,
) -> bool:
    async with transaction(sessions) as session:
        return await service.triage_complaint(session, event, settings=settings)


async def stored(
    sessions: async_sessionmaker[AsyncSession], complaint_id: uuid.UUID
) -> repository.StoredTriage:
    async with transaction(sessions) as session:
        row = await repository.get_triage(session, complaint_id=complaint_id)
    assert row is not None
    return row


async def events_of(
    sessions: async_sessionmaker[AsyncSession], complaint_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The complaint's events in the outbox, oldest first."""
    async with transaction(sessions) as session:
        rows = await session.execute(
            select(outbox.table.c.event_type, outbox.table.c.body)
            .where(outbox.table.c.message_key == str(complaint_id))
            .order_by(outbox.table.c.id)
        )
    return [{"type": row.event_type, **json.loads(row.body)["payload"]} for row in rows]


async def sla_timer(
    sessions: async_sessionmaker[AsyncSession], complaint_id: uuid.UUID
) -> Timer | None:
    async with transaction(sessions) as session:
        row = (
            await session.execute(
                select(timers).where(
                    timers.c.kind == service.SLA_TIMER,
                    timers.c.key == str(complaint_id),
                    timers.c.status == PENDING,
                )
            )
        ).first()
    return Timer.from_row(row) if row is not None else None


def agent(*teams: str) -> Principal:
    return Principal(role=Role.AGENT, subject="alice", teams=frozenset(teams))


class TestTriage:
    async def test_the_description_decides_and_the_event_and_the_sla_timer_say_so(self, sessions):
        event = received(merchant_id=unique("m"), customer_id=unique("c"))
        assert await triage(sessions, event)
        row = await stored(sessions, event.complaint_id)
        assert (row.category, row.team, row.provisional) == ("logistics", "logistics", True)
        assert row.subcategory in ("lost", "delayed")
        assert row.reasons
        assert row.signals
        assert row.classifier_version
        assert row.description == LOST_PARCEL
        (triaged,) = await events_of(sessions, event.complaint_id)
        assert triaged["type"] == "complaint.triaged"
        assert triaged["subcategory"] == row.subcategory
        assert triaged["reasons"] == row.reasons
        assert triaged["resolution_due_at"] is not None
        timer = await sla_timer(sessions, event.complaint_id)
        assert timer is not None
        # General: 48 h first response, the warning at 80%.
        assert timer.due_at == event.payload.received_at + timedelta(hours=48 * 0.8)

    async def test_a_replayed_complaint_is_triaged_once(self, sessions):
        event = received(merchant_id=unique("m"), customer_id=unique("c"))
        assert await triage(sessions, event)
        assert not await triage(sessions, event)
        assert len(await events_of(sessions, event.complaint_id)) == 1

    async def test_a_burn_is_urgent_whatever_the_tone(self, sessions):
        event = received(
            merchant_id=unique("m"),
            customer_id=unique("c"),
            description=BURNT + " No rush, sorry to bother you.",
            target="product",
        )
        await triage(sessions, event)
        row = await stored(sessions, event.complaint_id)
        assert row.priority == "urgent"
        assert any("injury" in reason or "health" in reason for reason in row.reasons)

    async def test_a_customer_with_earlier_complaints_is_a_repeat_complainant_not_a_group(
        self, sessions
    ):
        merchant, customer = unique("m"), unique("c")
        events = [received(merchant_id=merchant, customer_id=customer) for _ in range(3)]
        for event in events:
            await triage(sessions, event)
        last = await stored(sessions, events[-1].complaint_id)
        assert last.priority == "important"
        assert last.group_key is None
        assert any(reason.startswith("repeat_complainant: 2") for reason in last.reasons)


class TestGroupComplaints:
    async def test_the_kth_customer_raises_the_earlier_ones_and_links_them(self, sessions):
        merchant = unique("m")
        events = [received(merchant_id=merchant, customer_id=unique("c")) for _ in range(4)]
        for event in events[:2]:
            await triage(sessions, event)
        assert (await stored(sessions, events[0].complaint_id)).priority == "general"

        await triage(sessions, events[2])
        third = await stored(sessions, events[2].complaint_id)
        assert (third.priority, third.group_key) == ("urgent", f"merchant:{merchant}")
        for earlier in events[:2]:
            row = await stored(sessions, earlier.complaint_id)
            assert (row.priority, row.group_key) == ("urgent", f"merchant:{merchant}")
            assert row.reasons[-1].startswith("group_complaint: 3 customers complained about")
            _, retriaged = await events_of(sessions, earlier.complaint_id)
            assert retriaged["type"] == "complaint.retriaged"
            assert (retriaged["cause"], retriaged["previous_priority"]) == (
                "group_complaint",
                "general",
            )
            # Urgent: the first response is due 2 h after receipt, so the warning moved up.
            timer = await sla_timer(sessions, earlier.complaint_id)
            assert timer is not None
            assert timer.due_at == earlier.payload.received_at + timedelta(hours=2 * 0.8)

        await triage(sessions, events[3])
        assert (await stored(sessions, events[3].complaint_id)).group_key == f"merchant:{merchant}"
        assert len(await events_of(sessions, events[0].complaint_id)) == 2, "raised only once"

    async def test_members_arriving_at_the_same_moment_still_make_the_group(self, sessions):
        sku = unique("SKU")
        events = [
            received(merchant_id=unique("m"), customer_id=unique("c"), sku=sku) for _ in range(3)
        ]
        await asyncio.gather(*(triage(sessions, event) for event in events))
        rows = [await stored(sessions, event.complaint_id) for event in events]
        assert {row.group_key for row in rows} == {f"sku:{sku}"}
        assert {row.priority for row in rows} == {"urgent"}

    async def test_complaints_outside_the_window_are_not_a_group(self, sessions):
        merchant = unique("m")
        now = datetime.now(UTC)
        for hours_ago in (5, 3, 0):
            event = received(
                merchant_id=merchant,
                customer_id=unique("c"),
                received_at=now - timedelta(hours=hours_ago),
            )
            await triage(sessions, event)
        assert (await stored(sessions, event.complaint_id)).group_key is None


class TestRetriage:
    async def test_an_agent_of_the_team_changes_it_and_everything_follows(self, sessions):
        event = received(merchant_id=unique("m"), customer_id=unique("c"))
        await triage(sessions, event)
        async with transaction(sessions) as session:
            view = await service.retriage(
                session,
                complaint_id=event.complaint_id,
                category=None,
                subcategory="wrong_item",
                priority=Priority.URGENT,
                reason="the customer received someone else's parcel",
                principal=agent("logistics"),
                settings=SETTINGS,
            )
        received_at = event.payload.received_at
        assert (view.subcategory, view.priority, view.provisional) == (
            "wrong_item",
            "urgent",
            False,
        )
        assert view.first_response_due_at == received_at + timedelta(hours=2)
        assert view.retriaged_by == "agent:alice"
        timer = await sla_timer(sessions, event.complaint_id)
        assert timer is not None
        assert timer.due_at == received_at + timedelta(hours=2 * 0.8)
        retriaged = (await events_of(sessions, event.complaint_id))[-1]
        assert retriaged["type"] == "complaint.retriaged"
        assert (retriaged["cause"], retriaged["retriaged_by"]) == ("manual", "agent:alice")
        async with transaction(sessions) as session:
            (correction,) = (
                await session.execute(
                    select(corrections).where(corrections.c.complaint_id == event.complaint_id)
                )
            ).all()
        assert (correction.description, correction.subcategory) == (LOST_PARCEL, "wrong_item")
        assert correction.teaches_classifier

    async def test_repeating_a_retriage_changes_nothing(self, sessions):
        event = received(merchant_id=unique("m"), customer_id=unique("c"))
        await triage(sessions, event)
        for _ in range(2):
            async with transaction(sessions) as session:
                await service.retriage(
                    session,
                    complaint_id=event.complaint_id,
                    category=None,
                    subcategory=None,
                    priority=Priority.IMPORTANT,
                    reason="VIP customer",
                    principal=agent("logistics"),
                    settings=SETTINGS,
                )
        assert [e["type"] for e in await events_of(sessions, event.complaint_id)] == [
            "complaint.triaged",
            "complaint.retriaged",
        ]

    async def test_another_teams_complaint_reads_as_missing(self, sessions):
        event = received(merchant_id=unique("m"), customer_id=unique("c"))
        await triage(sessions, event)
        with pytest.raises(NotFoundError, match=f"no triage for complaint {event.complaint_id}"):
            async with transaction(sessions) as session:
                await service.retriage(
                    session,
                    complaint_id=event.complaint_id,
                    category=None,
                    subcategory="lost",
                    priority=None,
                    reason="mine now",
                    principal=agent("cs_quality"),
                    settings=SETTINGS,
                )

    async def test_a_tag_from_another_category_is_refused_and_a_withdrawn_one_is_closed(
        self, sessions
    ):
        event = received(merchant_id=unique("m"), customer_id=unique("c"))
        await triage(sessions, event)
        change: dict[str, Any] = {
            "complaint_id": event.complaint_id,
            "category": "after_sales",
            "subcategory": "lost",
            "priority": None,
            "reason": "wrong",
            "principal": agent("logistics"),
            "settings": SETTINGS,
        }
        with pytest.raises(UnprocessableError, match="belongs to 'logistics'"):
            async with transaction(sessions) as session:
                await service.retriage(session, **change)
        async with transaction(sessions) as session:
            await service.stop_clocks(
                session, complaint_id=event.complaint_id, reason="withdrawn", at=datetime.now(UTC)
            )
        with pytest.raises(ConflictError, match="withdrawn"):
            async with transaction(sessions) as session:
                await service.retriage(session, **{**change, "category": None})


class TestSlaTimer:
    async def fire(
        self, sessions: async_sessionmaker[AsyncSession], complaint_id: uuid.UUID, at: datetime
    ) -> None:
        timer = await sla_timer(sessions, complaint_id)
        assert timer is not None
        with using_clock(ManualClock(at)):
            async with transaction(sessions) as session:
                await service.fire_sla_timer(session, timer, settings=SETTINGS)

    async def test_warning_breach_and_each_escalation_are_announced_once(self, sessions):
        event = received(
            merchant_id=unique("m"), customer_id=unique("c"), description=BURNT, target="product"
        )
        await triage(sessions, event)
        t0 = event.payload.received_at
        # Urgent: warning at 1 h 36, breach at 2 h, agent at once, supervisor +1 h, head +2 h.
        await self.fire(sessions, event.complaint_id, t0 + timedelta(hours=1, minutes=40))
        await self.fire(sessions, event.complaint_id, t0 + timedelta(hours=3, minutes=30))
        types = [e["type"] for e in await events_of(sessions, event.complaint_id)]
        assert types == [
            "complaint.triaged",
            "complaint.sla_warning",
            "complaint.sla_breached",
            "complaint.escalated",
            "complaint.escalated",
        ]
        timer = await sla_timer(sessions, event.complaint_id)
        assert timer is not None
        assert timer.due_at == t0 + timedelta(hours=5)
        row = await stored(sessions, event.complaint_id)
        assert row.escalation_level == 2
        assert row.first_response_breached_at == t0 + timedelta(hours=2)
        escalated = (await events_of(sessions, event.complaint_id))[-1]
        assert (escalated["level"], escalated["escalated_to"]) == (2, "supervisor")

    async def test_paused_clocks_have_no_deadline_and_resume_moved_by_the_pause(self, sessions):
        event = received(merchant_id=unique("m"), customer_id=unique("c"))
        await triage(sessions, event)
        t0 = event.payload.received_at
        async with transaction(sessions) as session:
            await service.apply_case_state(
                session,
                complaint_id=event.complaint_id,
                case_state="awaiting_customer_confirmation",
                at=t0 + timedelta(hours=1),
                settings=SETTINGS,
            )
        paused = await stored(sessions, event.complaint_id)
        assert paused.first_response_due_at is None
        assert await sla_timer(sessions, event.complaint_id) is None
        async with transaction(sessions) as session:
            await service.apply_case_state(
                session,
                complaint_id=event.complaint_id,
                case_state="processing",
                at=t0 + timedelta(hours=4),
                settings=SETTINGS,
            )
        resumed = await stored(sessions, event.complaint_id)
        assert resumed.first_response_due_at == t0 + timedelta(hours=48 + 3)
        timer = await sla_timer(sessions, event.complaint_id)
        assert timer is not None
        assert timer.due_at == t0 + timedelta(hours=48 * 0.8 + 3)

    async def test_a_withdrawn_complaint_stops_for_good(self, sessions):
        event = received(merchant_id=unique("m"), customer_id=unique("c"))
        await triage(sessions, event)
        async with transaction(sessions) as session:
            await service.stop_clocks(
                session, complaint_id=event.complaint_id, reason="withdrawn", at=datetime.now(UTC)
            )
            await service.apply_case_state(
                session,
                complaint_id=event.complaint_id,
                case_state="processing",
                at=datetime.now(UTC),
                settings=SETTINGS,
            )
        assert await sla_timer(sessions, event.complaint_id) is None
        assert (await stored(sessions, event.complaint_id)).stop_reason == "withdrawn"

    async def test_the_first_response_meets_its_clock_and_the_timer_moves_on(self, sessions):
        event = received(
            merchant_id=unique("m"), customer_id=unique("c"), description=BURNT, target="product"
        )
        await triage(sessions, event)
        t0 = event.payload.received_at
        before = await sla_timer(sessions, event.complaint_id)
        assert before is not None
        assert before.due_at == t0 + timedelta(hours=1, minutes=36)  # first-response warning
        async with transaction(sessions) as session:
            for minutes in (30, 50):  # only the first action counts
                await service.record_first_response(
                    session,
                    complaint_id=event.complaint_id,
                    at=t0 + timedelta(minutes=minutes),
                    settings=SETTINGS,
                )
        row = await stored(sessions, event.complaint_id)
        assert row.first_responded_at == t0 + timedelta(minutes=30)
        after = await sla_timer(sessions, event.complaint_id)
        assert after is not None
        # Urgent resolution: 24 h, warned at 80%.
        assert after.due_at == t0 + timedelta(hours=24 * 0.8)
        await self.fire(sessions, event.complaint_id, t0 + timedelta(hours=20))
        types = [e["type"] for e in await events_of(sessions, event.complaint_id)]
        assert types == ["complaint.triaged", "complaint.sla_warning"]
        assert (await events_of(sessions, event.complaint_id))[-1]["clock"] == "resolution"


class TestReads:
    async def test_a_team_queue_lists_open_complaints_soonest_deadline_first(self, sessions):
        events = [
            received(merchant_id=unique("m"), customer_id=unique("c")),
            received(
                merchant_id=unique("m"),
                customer_id=unique("c"),
                description=LOST_PARCEL + "，我要投诉到12315",
            ),
        ]
        for event in events:
            await triage(sessions, event)
        async with transaction(sessions) as session:
            queue = await service.team_queue(
                session,
                team="logistics",
                principal=agent("logistics"),
                limit=200,
                settings=SETTINGS,
            )
        due = [item.due_at for item in queue.items if item.due_at is not None]
        assert due == sorted(due)
        ours = {item.complaint_id: item for item in queue.items}
        threat = ours[events[1].complaint_id]
        assert (threat.priority, threat.state) == ("urgent", "on_track")
        with pytest.raises(NotFoundError, match="no queue for team logistics"):
            async with transaction(sessions) as session:
                await service.team_queue(
                    session,
                    team="logistics",
                    principal=agent("cs_quality"),
                    limit=10,
                    settings=SETTINGS,
                )

    async def test_an_unsure_classification_waits_in_the_manual_triage_queue(self, sessions):
        event = received(
            merchant_id=unique("m"), customer_id=unique("c"), description="hello?", target="other"
        )
        await triage(sessions, event)
        row = await stored(sessions, event.complaint_id)
        assert (row.manual_review, row.team) == (True, "intake_review")
        admin = Principal(role=Role.ADMIN, subject="root")
        async with transaction(sessions) as session:
            queue = await service.manual_triage_queue(
                session, principal=admin, limit=200, settings=SETTINGS
            )
        assert event.complaint_id in {item.complaint_id for item in queue.items}


class TestErasure:
    async def test_the_customers_words_go_and_a_replay_does_not_bring_them_back(self, sessions):
        customer = unique("c")
        event = received(merchant_id=unique("m"), customer_id=customer)
        await triage(sessions, event)
        async with transaction(sessions) as session:
            await service.retriage(
                session,
                complaint_id=event.complaint_id,
                category=None,
                subcategory="lost",
                priority=None,
                reason="confirmed lost",
                principal=agent("logistics"),
                settings=SETTINGS,
            )
        erased = new_event(
            CustomerErased(
                complaint_number=event.payload.complaint_number,
                customer_id=customer,
                erased_at=datetime.now(UTC),
            ),
            producer="intake_service",
            complaint_id=event.complaint_id,
            correlation_id="svc-test",
        )
        async with transaction(sessions) as session:
            await service.erase_customer(session, erased)
        row = await stored(sessions, event.complaint_id)
        assert row.description is None
        assert row.customer_id.startswith("erased:")
        async with transaction(sessions) as session:
            texts = (
                await session.execute(
                    select(corrections.c.description).where(
                        corrections.c.complaint_id == event.complaint_id
                    )
                )
            ).scalars()
            assert list(texts) == [None]

        replayed = event.model_copy(update={"complaint_id": event.complaint_id})
        async with transaction(sessions) as session:
            await session.execute(
                triages.delete().where(triages.c.complaint_id == event.complaint_id)
            )
        assert await triage(sessions, replayed)
        again = await stored(sessions, event.complaint_id)
        assert (again.description, again.customer_id) == (None, row.customer_id)


class TestRetraining:
    # Last of the classifying tests: it swaps the process's model for one that learnt the
    # corrections every earlier test stored.
    async def test_corrections_reach_the_next_training(self, sessions):
        # Its own words: the retrained model serves every later test of the session.
        event = received(
            merchant_id=unique("m"),
            customer_id=unique("c"),
            description="Courier says delivered but nothing at my door, tracking 7788",
        )
        await triage(sessions, event)
        async with transaction(sessions) as session:
            before = service.current_classifier().version
            await service.retriage(
                session,
                complaint_id=event.complaint_id,
                category=None,
                subcategory="misdelivered",
                priority=None,
                reason="delivered to the neighbour's locker",
                principal=agent("logistics"),
                settings=SETTINGS,
            )
        async with transaction(sessions) as session:
            report = await service.retrain_classifier(session)
        assert report.corrections_used >= 1
        assert (report.previous_version, report.model_version != before) == (before, True)


async def test_the_migrations_build_exactly_the_tables_the_models_define(stack: StackUnderTest):
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "include_name": lambda name, type_, parent: (
                    name == "triage" if type_ == "schema" else name != "alembic_version"
                ),
            },
        )
        return list(compare_metadata(context, metadata))

    engine = create_engine(stack.admin_sqlalchemy_url(), pool_size=1)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()
