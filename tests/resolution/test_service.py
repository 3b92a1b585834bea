"""Resolution's service functions on the real database (no HTTP, no broker).

Each test drives one case as the handlers and routes do (plain inputs, a transaction per
step) and checks what only the database shows: the case row, its events in the outbox, the
timeline, the consent, the ledger and the timers.
"""

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from resolution_service import service
from resolution_service.config import Settings
from resolution_service.domain.ledger import Responsibility
from resolution_service.domain.policy import Concession, Goodwill
from resolution_service.domain.remedies import RemedyKind
from resolution_service.models import case_timeline, consents, metadata, outbox, timers
from services.catalog import BY_NAME
from shared.auth import Principal, Role
from shared.clock import ManualClock, using_clock
from shared.db import create_engine, create_sessionmaker, transaction
from shared.errors import NotFoundError
from shared.timers import PENDING
from tests.support.auth import OWN_TEAM
from tests.support.stack import StackUnderTest

pytestmark = pytest.mark.stack

SETTINGS = Settings()
START = datetime(2026, 6, 9, 2, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Shanghai
AGENT = Principal(role=Role.AGENT, subject="test-agent", teams=frozenset({OWN_TEAM}))
SUPERVISOR = Principal(role=Role.SUPERVISOR, subject="test-supervisor", teams=frozenset({OWN_TEAM}))
MERCHANT = Principal(role=Role.MERCHANT, subject="m-1", merchant_id="m-1")
OTHER_MERCHANT = Principal(role=Role.MERCHANT, subject="m-2", merchant_id="m-2")
T = TypeVar("T")


def storefront(customer: str) -> Principal:
    """The storefront acting for its signed-in customer."""
    return Principal(
        role=Role.STOREFRONT, subject="sf-test", storefront_id="sf-test", customer_id=customer
    )


@pytest.fixture(scope="module")
async def sessions(stack: StackUnderTest) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions as the resolution service's own database role."""
    engine = create_engine(stack.config.service_database_url(BY_NAME["resolution"]), pool_size=4)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


class Case:
    """One complaint's case, driven step by step, each step its own transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: ManualClock) -> None:
        self.sessions = sessions
        self.clock = clock
        self.complaint_id = uuid.uuid4()
        self.customer = f"cust-{self.complaint_id.hex[:8]}"

    async def step(self, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with transaction(self.sessions) as session:
            return await action(session)

    async def open(
        self,
        *,
        amount: str = "299.00",
        demands: dict[str, Decimal | None] | None = None,
        category: str = "product_quality",
        subcategory: str | None = "damaged",
        responsibility: str | None = "merchant",
        flags: tuple[str, ...] = (),
    ) -> None:
        facts = service.ComplaintFacts(
            complaint_id=self.complaint_id,
            storefront_id="sf-test",
            customer_id=self.customer,
            customer_flags=flags,
            order_amount=Decimal(amount),
            currency="CNY",
            delivered_at=self.clock.now() - timedelta(days=2),
            demands=demands if demands is not None else {"return": None, "refund": None},
            after_sales_reason=None,
            returnable_without_reason=True,
            received_at=self.clock.now(),
        )
        triage = service.Triage(
            complaint_id=self.complaint_id,
            complaint_number=f"202606-{uuid.uuid4().int % 1_000_000:06d}",
            merchant_id="m-1",
            category=category,
            subcategory=subcategory,
            priority="important",
            team=OWN_TEAM,
            responsibility=responsibility,
            first_response_due_at=self.clock.now() + timedelta(hours=4),
            correlation_id=f"svc-{self.complaint_id.hex[:8]}",
        )
        await self.step(lambda s: service.record_complaint_facts(s, facts))
        await self.step(lambda s: service.open_case(s, triage, settings=SETTINGS))

    async def row(self) -> Any:
        return await self.step(
            lambda s: service.get_case(
                s, complaint_id=self.complaint_id, principal=Principal(Role.ADMIN, "admin")
            )
        )

    async def events(self) -> list[str]:
        async def read(session: AsyncSession) -> list[str]:
            result = await session.execute(
                select(outbox.table.c.event_type)
                .where(outbox.table.c.message_key == str(self.complaint_id))
                .order_by(outbox.table.c.id)
            )
            return list(result.scalars())

        return await self.step(read)

    async def last_event(self, event_type: str) -> dict[str, Any]:
        async def read(session: AsyncSession) -> dict[str, Any]:
            result = await session.execute(
                select(outbox.table.c.body, outbox.table.c.headers)
                .where(
                    outbox.table.c.message_key == str(self.complaint_id),
                    outbox.table.c.event_type == event_type,
                )
                .order_by(outbox.table.c.id.desc())
                .limit(1)
            )
            body, headers = result.one()
            return {**json.loads(body), "headers": dict(headers)}

        return await self.step(read)

    async def pending_timers(self) -> set[str]:
        row = await self.row()

        async def read(session: AsyncSession) -> set[str]:
            result = await session.execute(
                select(timers.c.kind).where(timers.c.key == str(row.id), timers.c.status == PENDING)
            )
            return set(result.scalars())

        return await self.step(read)

    async def investigate(self) -> None:
        await self.step(
            lambda s: service.start_investigation(
                s, complaint_id=self.complaint_id, principal=AGENT, settings=SETTINGS
            )
        )

    async def propose(self, **kw: Any) -> Any:
        return await self.step(
            lambda s: service.propose_remedy(
                s, complaint_id=self.complaint_id, principal=kw.pop("principal", AGENT),
                settings=SETTINGS, **kw,
            )
        )  # fmt: skip

    async def decide(self, accept: bool, demanded: Decimal | None = None) -> Any:
        return await self.step(
            lambda s: service.customer_decides(
                s,
                complaint_id=self.complaint_id,
                accept=accept,
                offer_hash_seen=None,
                demanded_compensation=demanded,
                channel="app",
                principal=storefront(self.customer),
                settings=SETTINGS,
            )
        )

    async def report(
        self, key: str, action: str, principal: Principal = MERCHANT, **facts: str
    ) -> Any:
        return await self.step(
            lambda s: service.report_task(
                s,
                complaint_id=self.complaint_id,
                task_key=key,
                action=action,
                facts=facts,
                principal=principal,
                settings=SETTINGS,
            )
        )

    async def carry_out(self) -> Any:
        """Every task through to done, the way merchant systems report them."""
        row = None
        for _ in range(20):
            detail = await self.step(
                lambda s: service.case_detail(
                    s, complaint_id=self.complaint_id, principal=AGENT, settings=SETTINGS
                )
            )
            open_tasks = [t for t in detail["tasks"] if t["state"] != "done" and t["due_at"]]
            if not open_tasks:
                break
            task = open_tasks[0]
            key, kind = task["key"], task["kind"]
            if task["state"] == "pending":
                await self.report(key, "start")
            if kind == "return":
                await self.report(key, "record", tracking_number="YT9000")
                await self.report(key, "receive_return")
                await self.report(key, "inspect", result="passed", note="intact")
            elif kind == "coupon":
                await self.report(key, "issue_coupon", code="CP-1")
            elif kind in ("refund", "balance_credit"):
                await self.report(key, "record", reference="PAY-77")
            elif kind in ("reship", "exchange", "repair"):
                await self.report(key, "record", tracking_number="SF-1")
            else:
                await self.report(key, "record", sent_via="app", principal=AGENT)
            row = await self.report(key, "complete", principal=AGENT)
        return row


@pytest.fixture
def clock() -> Any:
    with using_clock(ManualClock(START)) as manual:
        yield manual


@pytest.fixture
def case(sessions: async_sessionmaker[AsyncSession], clock: ManualClock) -> Case:
    return Case(sessions, clock)


async def test_migrations_build_exactly_the_tables_the_models_describe(stack):
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "include_name": lambda name, type_, parent: (
                    name == "resolution" if type_ == "schema" else name != "alembic_version"
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


class TestOpening:
    async def test_a_triaged_complaint_opens_a_case_assigned_to_the_least_loaded_agent(
        self, case: Case
    ):
        await case.open()
        row = await case.row()
        assert (row.state, row.status, row.assignee_id) == (
            "open",
            "processing",
            "agent:test-agent",
        )
        assert await case.events() == ["case.opened", "case.assigned"]
        opened = await case.last_event("case.opened")
        assert opened["payload"]["customer_visible_state"] == "processing"
        assert opened["headers"]["merchant_id"] == "m-1"

    async def test_a_second_triage_updates_the_case_with_an_event(self, case: Case):
        await case.open()
        retriage = service.Triage(
            complaint_id=case.complaint_id,
            complaint_number=(await case.row()).complaint_number,
            merchant_id="m-1",
            category="product_quality",
            subcategory="counterfeit",
            priority="urgent",
            team=OWN_TEAM,
            responsibility=None,
            first_response_due_at=None,
            correlation_id="svc-retriage",
            by="agent:test-agent",
            reason="it is a fake",
        )
        await case.step(lambda s: service.retriage_case(s, retriage, settings=SETTINGS))
        row = await case.row()
        assert (row.priority, row.subcategory, row.state) == ("urgent", "counterfeit", "open")
        assert (await case.events())[-1] == "case.retriaged"

    async def test_a_withdrawal_stops_the_case_and_a_late_one_changes_nothing(self, case: Case):
        await case.open()
        withdraw = lambda s: service.withdraw_case(  # noqa: E731
            s, complaint_id=case.complaint_id, reason=None, settings=SETTINGS
        )
        await case.step(withdraw)
        assert (await case.row()).state == "withdrawn"
        await case.step(withdraw)
        assert (await case.events()).count("case.withdrawn") == 1


class TestRefusals:
    async def test_a_refused_transition_names_the_triggers_allowed_instead(self, case: Case):
        await case.open()
        with pytest.raises(service.TransitionConflictError) as refused:
            await case.step(
                lambda s: service.request_verification(
                    s, complaint_id=case.complaint_id, questions=[], principal=AGENT,
                    settings=SETTINGS,
                )
            )  # fmt: skip
        assert refused.value.status == 409
        assert "start_investigation" in refused.value.extensions["allowed_triggers"]

    async def test_no_remedy_before_responsibility_is_decided(self, case: Case):
        await case.open(responsibility="undetermined")
        await case.investigate()
        with pytest.raises(service.TransitionConflictError) as refused:
            await case.propose()
        assert refused.value.extensions["failed_guards"] == ["responsibility_decided"]

    async def test_another_merchant_finds_no_case(self, case: Case):
        await case.open()
        with pytest.raises(NotFoundError):
            await case.step(
                lambda s: service.get_case(
                    s, complaint_id=case.complaint_id, principal=OTHER_MERCHANT
                )
            )


class TestFlows:
    async def test_a_broken_item_is_returned_refunded_and_compensated_then_closes(
        self, case: Case, clock: ManualClock
    ):
        await case.open()
        await case.investigate()
        await case.step(
            lambda s: service.add_note(
                s, complaint_id=case.complaint_id, principal=AGENT, source="carrier",
                note="the carrier's scan shows the box intact", evidence_refs=["scan-1"],
            )
        )  # fmt: skip
        await case.step(
            lambda s: service.request_verification(
                s, complaint_id=case.complaint_id, questions=["QC record?"], principal=AGENT,
                settings=SETTINGS,
            )
        )  # fmt: skip
        assert await case.pending_timers() == {service.VERIFICATION_TIMER}
        await case.step(
            lambda s: service.answer_verification(
                s, complaint_id=case.complaint_id, stance="accept",
                statement="our packing failed", evidence_refs=[], principal=MERCHANT,
                settings=SETTINGS,
            )
        )  # fmt: skip
        assert await case.pending_timers() == set()
        row = await case.propose()
        assert (row.state, row.responsibility) == ("awaiting_customer", "merchant")
        assert row.proposal["policy_version"] == "compensation-v1"
        assert [r["kind"] for r in row.proposal["remedies"]][:2] == ["return_and_refund", "coupon"]
        row = await case.decide(accept=True)
        assert row.state == "executing"
        row = await case.carry_out()
        assert row.state == "resolved"
        assert await case.pending_timers() == {service.AUTO_CLOSE_TIMER}
        assert (await case.last_event("case.resolved"))["payload"]["resolved_at"]

        async def consent(session: AsyncSession) -> Any:
            result = await session.execute(select(consents).where(consents.c.case_id == row.id))
            return result.one()

        proof = await case.step(consent)
        assert proof.customer_id == case.customer
        assert proof.offer_hash == row.accepted_offer["offer_hash"]
        totals = await case.step(
            lambda s: service.ledger_totals(
                s, merchant_id="m-1", carrier_id=None, principal=MERCHANT
            )
        )
        assert totals[0] == "merchant"
        assert await case.step(lambda s: service.auto_close(
            s, complaint_id=case.complaint_id, settings=SETTINGS
        )) is False  # fmt: skip
        clock.advance(timedelta(days=7))
        assert await case.step(lambda s: service.auto_close(
            s, complaint_id=case.complaint_id, settings=SETTINGS
        )) is True  # fmt: skip
        assert (await case.row()).state == "closed"
        events = await case.events()
        assert events[:8] == [
            "case.opened",
            "case.assigned",
            "case.investigation_started",
            "case.merchant_verification_requested",
            "case.merchant_verification_answered",
            "case.remedy_proposed",
            "case.remedy_offered",
            "case.offer_accepted",
        ]
        assert events[-2:] == ["case.resolved", "case.closed"]

        async def lines(session: AsyncSession) -> list[Any]:
            result = await session.execute(
                select(case_timeline).where(case_timeline.c.case_id == row.id)
            )
            return list(result)

        timeline = await case.step(lines)
        notes = [line for line in timeline if line.kind == "note"]
        assert (notes[0].source, notes[0].actor, notes[0].evidence_refs) == (
            "carrier",
            "agent:test-agent",
            ["scan-1"],
        )
        assert {line.service for line in timeline} >= {"resolution_service", "triage_service"}

    async def test_a_merchant_silent_past_the_deadline_answers_for_the_case(
        self, case: Case, clock: ManualClock
    ):
        await case.open(responsibility="undetermined")
        await case.investigate()
        await case.step(
            lambda s: service.request_verification(
                s, complaint_id=case.complaint_id, questions=[], principal=AGENT,
                settings=SETTINGS,
            )
        )  # fmt: skip
        missed = lambda s: service.verification_deadline_passed(  # noqa: E731
            s, complaint_id=case.complaint_id, settings=SETTINGS
        )
        assert await case.step(missed) is False
        clock.advance(timedelta(days=4))
        assert await case.step(missed) is True
        assert await case.step(missed) is False
        event = await case.last_event("case.merchant_verification_deadline_missed")
        assert event["payload"]["state"] == "investigating"
        row = await case.propose()
        assert row.responsibility == "merchant"
        assert any("did not answer" in reason for reason in row.responsibility_reasons)

    async def test_a_100_coupon_rejected_for_500_is_settled_by_a_supervisor(self, case: Case):
        await case.open(
            amount="399.00",
            category="misleading_info",
            subcategory="unkept_promise",
            demands={"compensation": Decimal(500)},
        )
        await case.investigate()
        gift = Goodwill(RemedyKind.COUPON, "the promised gift was not sent", Decimal(100))
        row = await case.propose(
            finding=(Responsibility.MERCHANT.value, "the listing promised a gift"),
            goodwill=(gift,),
        )
        assert row.state == "awaiting_customer"
        row = await case.decide(accept=False, demanded=Decimal(500))
        assert (row.state, row.negotiation_rounds) == ("negotiating", 1)
        row = await case.step(
            lambda s: service.counter(
                s, complaint_id=case.complaint_id, compensation=None, principal=AGENT,
                settings=SETTINGS,
            )
        )  # fmt: skip
        assert row.state == "awaiting_customer"
        row = await case.decide(accept=False, demanded=Decimal(500))
        with pytest.raises(service.TransitionConflictError):
            await case.step(
                lambda s: service.counter(
                    s, complaint_id=case.complaint_id, compensation=None, principal=AGENT,
                    settings=SETTINGS,
                )
            )  # fmt: skip
        await case.step(
            lambda s: service.escalate_to_mediation(
                s, complaint_id=case.complaint_id, principal=SUPERVISOR, settings=SETTINGS
            )
        )
        row = await case.step(
            lambda s: service.mediate(
                s, complaint_id=case.complaint_id, compensation=Decimal(300),
                concessions=(Concession.REFUND, Concession.FREE_RETURN_PICKUP),
                principal=SUPERVISOR, settings=SETTINGS,
            )
        )  # fmt: skip
        assert row.state == "awaiting_customer"
        descriptions = [r["description"] for r in row.proposal["remedies"]]
        assert any("free pickup" in d and "full refund of 399.00" in d for d in descriptions)
        assert any("coupon of 300.00" in d for d in descriptions)
        row = await case.decide(accept=True)
        assert row.state == "executing"
        events = await case.events()
        assert events.count("case.offer_rejected") == 2
        assert {"case.escalated", "case.mediation_started", "case.counter_offered"} <= set(events)

    async def test_a_dispute_beyond_mediation_is_referred_and_a_dismissal_decides_it(
        self, case: Case
    ):
        await case.open(demands={"compensation": Decimal(2000)})
        await case.investigate()
        await case.propose(finding=("merchant", "the listing promised more"))
        for _ in range(2):
            await case.decide(accept=False, demanded=Decimal(2000))
            if (await case.row()).negotiation_rounds < 2:
                await case.step(
                    lambda s: service.counter(
                        s, complaint_id=case.complaint_id, compensation=None, principal=AGENT,
                        settings=SETTINGS,
                    )
                )  # fmt: skip
        await case.step(
            lambda s: service.escalate_to_mediation(
                s, complaint_id=case.complaint_id, principal=SUPERVISOR, settings=SETTINGS
            )
        )
        row = await case.step(
            lambda s: service.refer(
                s, complaint_id=case.complaint_id, body="consumer_association",
                principal=SUPERVISOR, settings=SETTINGS,
            )
        )  # fmt: skip
        assert (row.state, row.referral) == (
            "referred_externally",
            {"body": "consumer_association"},
        )
        row = await case.step(
            lambda s: service.record_external_outcome(
                s, complaint_id=case.complaint_id, settled=False,
                summary="the association found the listing clear", principal=SUPERVISOR,
                settings=SETTINGS,
            )
        )  # fmt: skip
        assert (row.state, row.status) == ("rejected", "completed")
        assert row.referral["outcome"] == "dismissed"
        assert await case.pending_timers() == {service.AUTO_CLOSE_TIMER}
        assert (await case.events())[-2:] == ["case.external_outcome_recorded", "case.rejected"]

    async def test_a_flagged_account_needs_a_supervisors_approval(self, case: Case):
        await case.open(flags=("abuse_suspected",))
        await case.investigate()
        row = await case.propose(finding=("merchant", "the photo shows the crack"))
        assert row.state == "pending_approval"
        assert any("flag" in reason for reason in row.proposal["approval"]["reasons"])
        with pytest.raises(service.TransitionConflictError):
            await case.step(
                lambda s: service.approve(
                    s, complaint_id=case.complaint_id, approved=False, reason=" ",
                    principal=SUPERVISOR, settings=SETTINGS,
                )
            )  # fmt: skip
        row = await case.step(
            lambda s: service.approve(
                s, complaint_id=case.complaint_id, approved=True, reason=None,
                principal=SUPERVISOR, settings=SETTINGS,
            )
        )  # fmt: skip
        assert row.state == "awaiting_customer"
        assert (await case.events())[-2:] == ["case.remedy_approved", "case.remedy_offered"]

    async def test_an_appeal_after_closing_is_reviewed_and_reopens_the_case(
        self, case: Case, clock: ManualClock
    ):
        await case.open(demands={"reship": None})
        await case.investigate()
        await case.propose(finding=("merchant", "the kettle was cracked in the box"))
        await case.decide(accept=True)
        await case.carry_out()
        clock.advance(timedelta(days=8))
        await case.step(
            lambda s: service.auto_close(s, complaint_id=case.complaint_id, settings=SETTINGS)
        )
        customer = storefront(case.customer)
        row = await case.step(
            lambda s: service.appeal(
                s, complaint_id=case.complaint_id, reason="a second crack", principal=customer,
                settings=SETTINGS,
            )
        )  # fmt: skip
        assert row.state == "appealed"
        with pytest.raises(service.TransitionConflictError):
            await case.step(
                lambda s: service.start_review(
                    s,
                    complaint_id=case.complaint_id,
                    principal=Principal(Role.AGENT, "test-agent", teams=frozenset({OWN_TEAM})),
                    settings=SETTINGS,
                )
            )
        await case.step(
            lambda s: service.start_review(
                s, complaint_id=case.complaint_id, principal=SUPERVISOR, settings=SETTINGS
            )
        )
        row = await case.step(
            lambda s: service.decide_review(
                s, complaint_id=case.complaint_id, reopen=True, reason="the new photo",
                principal=SUPERVISOR, settings=SETTINGS,
            )
        )  # fmt: skip
        assert (row.state, row.status) == ("reopened", "processing")
        await case.investigate()
        assert (await case.events())[-5:] == [
            "case.closed",
            "case.appealed",
            "case.review_started",
            "case.reopened",
            "case.investigation_started",
        ]
        with pytest.raises(service.TransitionConflictError):
            await case.step(
                lambda s: service.appeal(
                    s, complaint_id=case.complaint_id, reason="again", principal=customer,
                    settings=SETTINGS,
                )
            )  # fmt: skip

    async def test_an_erased_customer_is_pseudonymised_in_facts_and_consent(self, case: Case):
        await case.open(demands={"reship": None})
        await case.investigate()
        await case.propose(finding=("merchant", "cracked"))
        row = await case.decide(accept=True)
        await case.step(
            lambda s: service.erase_customer(
                s, complaint_id=case.complaint_id, customer_id=case.customer, at=START
            )
        )

        async def consent(session: AsyncSession) -> Any:
            result = await session.execute(select(consents).where(consents.c.case_id == row.id))
            return result.one()

        assert (await case.step(consent)).customer_id.startswith("erased:")
