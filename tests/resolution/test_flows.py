"""The domain's example flows, walked through the pure rules: lifecycle, policy, ledger, tasks.

Each flow drives the lifecycle table with the contexts the other modules' decisions give,
as the service will, and checks the events, what the customer sees, who pays and when.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from resolution_service.domain.closure import (
    ReviewOutcome,
    appeal_window_ends_at,
    auto_close_at,
    review_appeal,
)
from resolution_service.domain.ledger import (
    Finding,
    Responsibility,
    decide_responsibility,
    ledger_entries,
    totals_per_carrier,
    totals_per_merchant,
    totals_per_party,
)
from resolution_service.domain.lifecycle import (
    INITIAL_STATE,
    OPENING,
    CaseContext,
    CaseEvent,
    CaseState,
    TransitionRefused,
    Trigger,
    fire,
    visible_state,
)
from resolution_service.domain.negotiation import (
    Negotiation,
    Stage,
    consent_matches,
    counter_offer,
    record_consent,
    record_rejection,
    start_mediation,
)
from resolution_service.domain.policy import (
    CaseFacts,
    Concession,
    Goodwill,
    Proposal,
    evaluate,
    load_policy,
)
from resolution_service.domain.remedies import Party, RemedyKind
from resolution_service.domain.tasks import (
    InspectionResult,
    Task,
    TaskKind,
    TaskTrigger,
    all_tasks_done,
    fire_task,
    inspect_return,
    issue_coupon,
    plan_tasks,
    receive_return,
    record,
    release_waiting,
)
from resolution_service.domain.verification import (
    MerchantAnswer,
    Stance,
    VerificationResult,
    deadline_missed,
    record_answer,
    request_verification,
)
from shared.calendar import load_calendar
from shared.events.vocabulary import CaseStatus

SHANGHAI = ZoneInfo("Asia/Shanghai")
CN = load_calendar("cn")
AGENT, SUPERVISOR, REVIEWER = "agent-7", "supervisor-2", "reviewer-1"
AGENT_LIMIT, SUPERVISOR_LIMIT = Decimal(500), Decimal(3000)


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)


@dataclass
class Walk:
    """A case walked through the table: its state, every event, what the customer saw."""

    state: CaseState = INITIAL_STATE
    events: list[CaseEvent] = field(default_factory=lambda: list(OPENING.events))
    seen: list[CaseStatus] = field(default_factory=lambda: [visible_state(INITIAL_STATE)])
    context: CaseContext = field(default_factory=lambda: CaseContext(assignee_id=AGENT))

    def fire(self, trigger: Trigger, **facts: Any) -> None:
        transition = fire(self.state, trigger, replace(self.context, **facts))
        self.state = transition.next_state
        self.events.extend(transition.events)
        if visible_state(self.state) is not self.seen[-1]:
            self.seen.append(visible_state(self.state))

    def offer(self, proposal: Proposal, limit: Decimal) -> None:
        """Sends a proposal the way the table routes it: to approval or to the customer."""
        self.context = replace(
            self.context,
            offer_total=proposal.total_value,
            approval_limit=limit,
            policy_requires_approval=proposal.approval.required,
        )
        if proposal.approval.required:
            self.fire(Trigger.SUBMIT_FOR_APPROVAL)
            self.fire(Trigger.SUPERVISOR_APPROVES)
        else:
            self.fire(Trigger.OFFER_TO_CUSTOMER)


def investigate(walk: Walk) -> None:
    walk.fire(Trigger.ASSIGN)
    walk.fire(Trigger.START_INVESTIGATION)


def execute(walk: Walk, tasks: tuple[Task, ...], at: datetime) -> tuple[Task, ...]:
    """Carries every task out with the facts it needs, firing the case's triggers."""
    walk.fire(Trigger.START_EXECUTION, task_count=len(tasks))
    done: list[Task] = []
    pending = list(tasks)
    while pending:
        task = pending.pop(0)
        if task.clock is None:
            pending.append(task)
            continue
        task = fire_task(task, TaskTrigger.START, at=at)
        if task.kind is TaskKind.RETURN:
            task = record(task, at=at, tracking_number="YT9000")
            task = receive_return(task, at=at + timedelta(days=2), calendar=CN)
            task = inspect_return(
                task, result=InspectionResult.PASSED, note="ok", at=at + timedelta(days=3)
            )
        elif task.kind is TaskKind.COUPON:
            task = issue_coupon(task, code="CP-1", at=at)
        else:
            facts = {
                TaskKind.REFUND: {"reference": "PAY-77"},
                TaskKind.RESHIP: {"tracking_number": "SF-1"},
                TaskKind.EXPLANATION: {"sent_via": "app"},
            }[task.kind]
            task = record(task, at=at, **facts)
        task = fire_task(task, TaskTrigger.COMPLETE, at=at + timedelta(days=3))
        walk.fire(Trigger.COMPLETE_TASK)
        done.append(task)
        pending = list(release_waiting(pending, task, calendar=CN))
    assert all_tasks_done(done)
    walk.fire(Trigger.FINISH_EXECUTION, task_count=len(done), tasks_done=len(done))
    return tuple(done)


def accept(walk: Walk, proposal: Proposal, at: datetime) -> None:
    consent = record_consent(proposal, customer_id="c-1", at=at, channel="app")
    assert consent_matches(consent, proposal)
    walk.fire(Trigger.CUSTOMER_ACCEPTS, consent_recorded=True)


def test_a_broken_item_is_returned_refunded_and_compensated_then_closes():
    walk = Walk()
    investigate(walk)
    walk.fire(Trigger.REQUEST_MERCHANT_VERIFICATION)
    request = request_verification(requested_at=local(2025, 6, 9, 10, 0), calendar=CN)
    answer = MerchantAnswer(Stance.ACCEPT, local(2025, 6, 9, 15, 0), "our packing failed")
    outcome = record_answer(request, answer)
    walk.fire(Trigger.MERCHANT_ANSWERS)
    decision = decide_responsibility("merchant", verification=outcome)
    facts = CaseFacts(
        "product_quality",
        "damaged",
        decision.responsibility,
        Decimal(299),
        demands={"return": None, "refund": None},
    )
    proposal = evaluate(facts, approval_limit=AGENT_LIMIT)
    walk.fire(Trigger.PROPOSE_REMEDY, responsibility_decided=decision.decided)
    walk.offer(proposal, AGENT_LIMIT)
    accept(walk, proposal, local(2025, 6, 9, 18, 0))
    tasks = plan_tasks(
        proposal.remedies,
        complaint_number="202506-000123",
        planned_at=local(2025, 6, 10, 9, 0),
        calendar=CN,
        return_address="仓库",
    )
    assert [t.kind for t in tasks] == [
        TaskKind.RETURN,
        TaskKind.REFUND,
        TaskKind.COUPON,
        TaskKind.EXPLANATION,
    ]
    execute(walk, tasks, local(2025, 6, 10, 9, 0))
    resolved_at = local(2025, 6, 13, 9, 0)
    with pytest.raises(TransitionRefused, match="auto_close_due"):
        walk.fire(Trigger.AUTO_CLOSE, now=resolved_at, auto_close_at=auto_close_at(resolved_at))
    walk.fire(
        Trigger.AUTO_CLOSE,
        now=resolved_at + timedelta(days=7),
        auto_close_at=auto_close_at(resolved_at),
    )
    assert walk.state is CaseState.CLOSED
    assert walk.seen == [
        CaseStatus.PROCESSING,
        CaseStatus.AWAITING_CUSTOMER_CONFIRMATION,
        CaseStatus.PROCESSING,
        CaseStatus.COMPLETED,
        CaseStatus.CLOSED,
    ]
    assert walk.events[:8] == [
        CaseEvent.OPENED,
        CaseEvent.ASSIGNED,
        CaseEvent.INVESTIGATION_STARTED,
        CaseEvent.MERCHANT_VERIFICATION_REQUESTED,
        CaseEvent.MERCHANT_VERIFICATION_ANSWERED,
        CaseEvent.REMEDY_PROPOSED,
        CaseEvent.REMEDY_OFFERED,
        CaseEvent.OFFER_ACCEPTED,
    ]
    assert walk.events.count(CaseEvent.TASK_COMPLETED) == 4
    assert walk.events[-2:] == [CaseEvent.RESOLVED, CaseEvent.CLOSED]
    entries = ledger_entries(proposal.remedies, decision, merchant_id="m-1")
    assert totals_per_merchant(entries) == {("m-1", "CNY"): Decimal("349.00")}


def test_a_crushed_parcel_is_refunded_in_3_working_days_with_a_200_coupon_a_supervisor_approved():
    walk = Walk()
    investigate(walk)
    finding = Finding(Responsibility.LOGISTICS, "the carrier's scan shows the box crushed", AGENT)
    decision = decide_responsibility("merchant", finding=finding)
    goodwill = Goodwill(RemedyKind.COUPON, "the company accepts responsibility", Decimal(200), 30)
    facts = CaseFacts(
        "product_quality",
        "damaged",
        decision.responsibility,
        Decimal(299),
        demands={"refund": None},
    )
    proposal = evaluate(facts, approval_limit=AGENT_LIMIT, goodwill=(goodwill,))
    walk.fire(Trigger.PROPOSE_REMEDY, responsibility_decided=decision.decided)
    walk.offer(proposal, AGENT_LIMIT)
    assert CaseEvent.APPROVAL_REQUESTED in walk.events
    assert CaseEvent.REMEDY_APPROVED in walk.events
    assert walk.state is CaseState.AWAITING_CUSTOMER
    accept(walk, proposal, local(2025, 6, 12, 16, 0))
    planned = local(2025, 6, 13, 16, 0)  # a Friday afternoon
    tasks = plan_tasks(
        proposal.remedies,
        complaint_number="202506-000200",
        planned_at=planned,
        calendar=CN,
        return_address="仓库",
    )
    refund = next(t for t in tasks if t.kind is TaskKind.REFUND)
    assert refund.due_at(CN) == local(2025, 6, 18, 16, 0)
    execute(walk, tasks, planned)
    assert walk.state is CaseState.RESOLVED
    entries = ledger_entries(proposal.remedies, decision, merchant_id="m-1", carrier_id="sf")
    assert totals_per_carrier(entries) == {("sf", "CNY"): Decimal("299.00")}
    assert totals_per_party(entries)[(Party.PLATFORM, "CNY")] == Decimal("200.00")
    assert totals_per_merchant(entries) == {}


def test_rejecting_a_100_coupon_for_500_ends_with_a_supervisors_refund_300_coupon_and_pickup():
    walk = Walk()
    investigate(walk)
    facts = CaseFacts(
        "misleading_info",
        "unkept_promise",
        Responsibility.MERCHANT,
        Decimal(399),
        demands={"compensation": Decimal(500)},
    )
    gift = Goodwill(RemedyKind.COUPON, "the promised gift was not sent", Decimal(100))
    offer = evaluate(facts, approval_limit=AGENT_LIMIT, goodwill=(gift,))
    walk.fire(Trigger.PROPOSE_REMEDY, responsibility_decided=True)
    walk.offer(offer, AGENT_LIMIT)
    negotiation = Negotiation()
    walk.context = replace(
        walk.context, max_negotiation_rounds=load_policy().negotiation.max_rounds
    )

    negotiation = record_rejection(negotiation, offer, at=local(2025, 6, 9, 12, 0))
    walk.fire(Trigger.CUSTOMER_REJECTS)
    offer = counter_offer(offer, facts=facts, stage=Stage.NEGOTIATION, approval_limit=AGENT_LIMIT)
    walk.fire(Trigger.COUNTER_OFFER, negotiation_rounds=negotiation.rounds)
    walk.offer(offer, AGENT_LIMIT)
    assert offer.compensation_value == Decimal("200.00")

    negotiation = record_rejection(negotiation, offer, at=local(2025, 6, 9, 15, 0))
    walk.fire(Trigger.CUSTOMER_REJECTS)
    with pytest.raises(TransitionRefused, match="negotiation_rounds_left"):
        walk.fire(Trigger.COUNTER_OFFER, negotiation_rounds=negotiation.rounds)
    negotiation = start_mediation(negotiation, load_policy().negotiation)
    walk.fire(Trigger.ESCALATE_TO_MEDIATION, negotiation_rounds=negotiation.rounds)
    settled = counter_offer(
        offer,
        facts=facts,
        stage=Stage.MEDIATION,
        approval_limit=SUPERVISOR_LIMIT,
        concessions=(Concession.REFUND, Concession.FREE_RETURN_PICKUP),
    )
    walk.context = replace(walk.context, mediation_held=negotiation.mediation_held)
    walk.fire(Trigger.PROPOSE_REMEDY)
    walk.offer(settled, SUPERVISOR_LIMIT)
    accept(walk, settled, local(2025, 6, 10, 10, 0))
    assert walk.state is CaseState.ACCEPTED
    assert settled.describe()[:2] == (
        "return (free pickup, shipping paid by platform) and full refund of 399.00 CNY to the "
        "original payment method, 7 days after the return arrives",
        "no-threshold coupon of 300.00 CNY, valid 30 days",
    )
    assert CaseEvent.ESCALATED in walk.events
    assert CaseEvent.MEDIATION_STARTED in walk.events
    assert walk.events.count(CaseEvent.OFFER_REJECTED) == 2


def test_a_cracked_kettle_is_reshipped_within_24_hours_with_a_50_coupon():
    walk = Walk()
    investigate(walk)
    facts = CaseFacts(
        "product_quality",
        "damaged",
        Responsibility.MERCHANT,
        Decimal(159),
        demands={"reship": None},
    )
    proposal = evaluate(facts, approval_limit=AGENT_LIMIT)
    walk.fire(Trigger.PROPOSE_REMEDY, responsibility_decided=True)
    walk.offer(proposal, AGENT_LIMIT)
    accept(walk, proposal, local(2025, 6, 9, 10, 40))
    tasks = plan_tasks(
        proposal.remedies,
        complaint_number="202506-000300",
        planned_at=local(2025, 6, 9, 10, 45),
        calendar=CN,
        return_address="仓库",
    )
    reship = tasks[0]
    assert (reship.kind, reship.due_at(CN)) == (TaskKind.RESHIP, local(2025, 6, 10, 10, 45))
    execute(walk, tasks, local(2025, 6, 9, 11, 0))
    assert walk.state is CaseState.RESOLVED
    assert [r.kind for r in proposal.remedies][:2] == [RemedyKind.RESHIP, RemedyKind.COUPON]
    assert proposal.remedies[1].amount == Decimal("50.00")


def test_a_merchant_who_misses_the_verification_deadline_answers_for_the_case():
    walk = Walk()
    investigate(walk)
    walk.fire(Trigger.REQUEST_MERCHANT_VERIFICATION)
    request = request_verification(requested_at=local(2025, 6, 6, 17, 0), calendar=CN)
    early = request.due_at - timedelta(minutes=1)
    with pytest.raises(TransitionRefused, match="verification_overdue"):
        walk.fire(
            Trigger.VERIFICATION_DEADLINE_PASSES, now=early, verification_due_at=request.due_at
        )
    walk.fire(
        Trigger.VERIFICATION_DEADLINE_PASSES,
        now=request.due_at,
        verification_due_at=request.due_at,
    )
    assert walk.events[-1] is CaseEvent.MERCHANT_VERIFICATION_DEADLINE_MISSED
    assert walk.state is CaseState.INVESTIGATING
    outcome = deadline_missed(request, request.due_at)
    assert outcome.result is VerificationResult.DEADLINE_MISSED
    decision = decide_responsibility("undetermined", verification=outcome)
    assert (decision.responsibility, decision.decided) == (Responsibility.MERCHANT, True)
    proposal = evaluate(
        CaseFacts("product_quality", "not_as_described", decision.responsibility, Decimal(120)),
        approval_limit=AGENT_LIMIT,
    )
    assert {r.paid_by for r in proposal.remedies if r.paid_by} == {Party.MERCHANT}
    walk.fire(Trigger.PROPOSE_REMEDY, responsibility_decided=decision.decided)


def test_an_appeal_after_closing_is_reviewed_and_reopens_the_case():
    walk = Walk(state=CaseState.RESOLVED, seen=[CaseStatus.COMPLETED])
    decided_at = local(2025, 6, 2, 9, 0)
    walk.context = replace(
        walk.context,
        auto_close_at=auto_close_at(decided_at),
        appeal_window_ends_at=appeal_window_ends_at(decided_at),
    )
    walk.fire(Trigger.AUTO_CLOSE, now=decided_at + timedelta(days=7))
    with pytest.raises(TransitionRefused, match="within_appeal_window"):
        walk.fire(Trigger.APPEAL, now=decided_at + timedelta(days=31))
    walk.fire(Trigger.APPEAL, now=decided_at + timedelta(days=20))
    with pytest.raises(TransitionRefused, match="has_independent_reviewer"):
        walk.fire(Trigger.START_REVIEW, reviewer_id=AGENT)
    walk.fire(Trigger.START_REVIEW, reviewer_id=REVIEWER)
    review = review_appeal(
        outcome=ReviewOutcome.REOPENED,
        reviewer_id=REVIEWER,
        decided_by=AGENT,
        reason="the new photo shows a second crack",
        at=decided_at + timedelta(days=21),
    )
    walk.fire(review.trigger, reason=review.reason)
    walk.fire(Trigger.START_INVESTIGATION)
    assert walk.state is CaseState.INVESTIGATING
    assert walk.events[-5:] == [
        CaseEvent.CLOSED,
        CaseEvent.APPEALED,
        CaseEvent.REVIEW_STARTED,
        CaseEvent.REOPENED,
        CaseEvent.INVESTIGATION_STARTED,
    ]
    assert walk.seen == [CaseStatus.COMPLETED, CaseStatus.CLOSED, CaseStatus.PROCESSING]
    with pytest.raises(TransitionRefused, match="not_appealed_before"):
        fire(
            CaseState.CLOSED,
            Trigger.APPEAL,
            CaseContext(
                now=decided_at + timedelta(days=25),
                appeal_window_ends_at=appeal_window_ends_at(decided_at),
                appealed_before=True,
            ),
        )
