"""Resolution rules applied to stored cases: load, ask the domain, store, emit. Never commits.

Every change of a case goes through `_fire`: the lifecycle table (`domain.lifecycle.fire`)
decides, the case row is updated first (its lock orders one complaint's outbox rows), then the
transition's events go to the outbox and a line to the case's timeline, all in the caller's
transaction. Kafka handlers and HTTP routes both call the functions below with plain inputs.
"""

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from resolution_service import repository
from resolution_service.config import Settings
from resolution_service.domain.closure import ClosurePolicy, appeal_window_ends_at, auto_close_at
from resolution_service.domain.ledger import (
    Finding,
    Responsibility,
    ResponsibilityDecision,
    decide_responsibility,
    ledger_entries,
)
from resolution_service.domain.lifecycle import (
    ACTIVE_STATES,
    OPENING,
    CaseContext,
    CaseEvent,
    CaseState,
    TransitionRefused,
    Trigger,
    allowed_triggers,
    fire,
    visible_state,
)
from resolution_service.domain.negotiation import (
    NegotiationRefused,
    Stage,
    counter_offer,
    offer_hash,
    record_consent,
)
from resolution_service.domain.policy import (
    Approval,
    CapApplied,
    CaseFacts,
    Concession,
    Goodwill,
    PolicyError,
    Proposal,
    RuleApplied,
    evaluate,
    load_policy,
)
from resolution_service.domain.remedies import Party, Remedy, RemedyKind, RemedySource
from resolution_service.domain.tasks import (
    InspectionResult,
    Task,
    TaskRefused,
    TaskState,
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
from resolution_service.domain.timing import TimeBudget
from resolution_service.domain.verification import (
    MerchantAnswer,
    Stance,
    VerificationError,
    VerificationOutcome,
    VerificationRequest,
    VerificationResult,
    deadline_missed,
    record_answer,
)
from resolution_service.models import outbox, timers
from shared.auth import Principal, Role, ensure_visible
from shared.calendar import SlaClock, load_calendar
from shared.errors import ConflictError, NotFoundError, UnprocessableError
from shared.events import (
    CASE_CHANGES,
    CaseChange,
    CaseOpened,
    EventEnvelope,
    RemedyLine,
    new_event,
)
from shared.events.vocabulary import CaseStatus, Priority, known
from shared.pii import customer_pseudonym
from shared.time import utcnow
from shared.timers import Timer, cancel, schedule

PRODUCER = "resolution_service"
SERVICE = "resolution_service"
VERIFICATION_TIMER = "resolution.verification_deadline"
AUTO_CLOSE_TIMER = "resolution.auto_close"
EVENT_CLASSES: Mapping[str, type[CaseChange]] = {cls.event_type: cls for cls in CASE_CHANGES}
ACTIVE = tuple(state.value for state in ACTIVE_STATES)


class TransitionConflictError(ConflictError):
    """409: the lifecycle does not allow that now; the problem lists what it allows."""

    title = "Not possible in the case's state"
    type_slug = "transition-refused"


def case_priority(priority: str) -> Priority:
    """The priority a case works to; one this service does not know yet counts as general."""
    return known(Priority, priority) or Priority.GENERAL


# --- Inputs --------------------------------------------------------------------------


@dataclass(frozen=True)
class Triage:
    """What triage decided about a complaint (complaint.triaged or complaint.retriaged)."""

    complaint_id: UUID
    complaint_number: str
    merchant_id: str
    category: str
    subcategory: str | None
    priority: str
    team: str
    responsibility: str | None
    first_response_due_at: datetime | None
    correlation_id: str
    by: str = "triage_service"
    reason: str | None = None


@dataclass(frozen=True)
class ComplaintFacts:
    """What resolution keeps of complaint.received: scope, flags and the order's facts."""

    complaint_id: UUID
    storefront_id: str | None
    customer_id: str
    customer_flags: tuple[str, ...]
    order_amount: Decimal | None
    currency: str
    delivered_at: datetime | None
    demands: Mapping[str, Decimal | None]
    after_sales_reason: str | None
    returnable_without_reason: bool
    received_at: datetime


@dataclass(frozen=True)
class Actor:
    """Who acts: a caller's id (`agent:alice`) or this service, and from which service."""

    id: str
    service: str = SERVICE

    @classmethod
    def of(cls, principal: Principal) -> "Actor":
        """The actor for an API caller."""
        return cls(principal.id)


SYSTEM = Actor(PRODUCER)


# --- Loading, firing, emitting -------------------------------------------------------


async def _case(session: AsyncSession, complaint_id: UUID, *, lock: bool = True) -> Row[Any]:
    row = await repository.get_case_by_complaint(
        session, complaint_id=complaint_id, for_update=lock
    )
    if row is None:
        raise NotFoundError(f"no case for complaint {complaint_id}")
    return row


async def _visible_case(
    session: AsyncSession, complaint_id: UUID, principal: Principal, *, lock: bool = True
) -> Row[Any]:
    """The case, if the caller's scope covers it; out of scope reads like a missing case."""
    missing = f"no case for complaint {complaint_id}"
    row = await repository.get_case_by_complaint(
        session, complaint_id=complaint_id, for_update=lock
    )
    if row is None:
        raise NotFoundError(missing)
    facts = await repository.get_facts(session, complaint_id=complaint_id)
    ensure_visible(
        principal,
        missing,
        merchant_id=row.merchant_id,
        team=row.team,
        storefront_id=facts.storefront_id if facts is not None else None,
        customer_id=facts.customer_id if facts is not None else None,
    )
    return row


def _context(case: Row[Any], now: datetime, settings: Settings, **facts: Any) -> CaseContext:
    proposal = case.proposal or {}
    return replace(
        CaseContext(
            now=now,
            assignee_id=case.assignee_id,
            reviewer_id=case.reviewer_id,
            responsibility_decided=case.responsibility is not None,
            offer_total=Decimal(proposal.get("total_value", "0")),
            approval_limit=Decimal(proposal.get("approval_limit", "0")),
            policy_requires_approval=bool(proposal.get("approval", {}).get("required")),
            negotiation_rounds=case.negotiation_rounds,
            max_negotiation_rounds=load_policy(settings.policy_version).negotiation.max_rounds,
            mediation_held=case.mediation_held,
            verification_due_at=case.verification_due_at,
            auto_close_at=case.auto_close_at,
            appeal_window_ends_at=case.appeal_window_ends_at,
            appealed_before=case.appealed_before,
        ),
        **facts,
    )


def _remedy_lines(proposal: Mapping[str, Any] | None) -> list[RemedyLine]:
    if not proposal:
        return []
    return [
        RemedyLine(
            kind=r["kind"],
            amount=Decimal(r["amount"]),
            currency=r["currency"],
            paid_by=r.get("paid_by"),
            description=r["description"],
        )
        for r in proposal["remedies"]
    ]


def _ensure_allowed(case: Row[Any], trigger: Trigger, settings: Settings, **context: Any) -> None:
    """Refuses early, before the domain computes an offer the lifecycle would not take."""
    state = CaseState(case.state)
    try:
        fire(state, trigger, _context(case, utcnow(), settings, **context))
    except TransitionRefused as refused:
        raise _conflict(refused) from refused


def _conflict(refused: TransitionRefused) -> "TransitionConflictError":
    return TransitionConflictError(
        str(refused),
        state=refused.state.value,
        trigger=refused.trigger.value,
        allowed_triggers=[t.value for t in refused.allowed_triggers],
        failed_guards=list(refused.failed_guards),
    )


async def _fire(
    session: AsyncSession,
    case: Row[Any],
    trigger: Trigger,
    *,
    actor: Actor,
    settings: Settings,
    correlation_id: str | None = None,
    causation: EventEnvelope[Any] | None = None,
    context: Mapping[str, Any] | None = None,
    values: Mapping[str, Any] | None = None,
    event: Mapping[str, Any] | None = None,
    note: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> Row[Any]:
    """Fires `trigger` on the case; stores its new state, events and timeline line."""
    now = utcnow()
    state = CaseState(case.state)
    try:
        transition = fire(state, trigger, _context(case, now, settings, **(context or {})))
    except TransitionRefused as refused:
        raise _conflict(refused) from refused
    after = transition.next_state
    updated = await repository.update_case(
        session,
        case_id=case.id,
        values={
            **(values or {}),
            "state": after.value,
            "status": visible_state(after).value,
            "updated_at": now,
        },
    )
    for event_type in transition.events:
        await _emit(
            session,
            updated,
            event_type,
            trigger=trigger,
            previous=state,
            actor=actor,
            at=now,
            correlation_id=correlation_id,
            causation=causation,
            fields=event,
        )
    await _timeline(
        session,
        updated,
        actor=actor,
        kind=trigger.value,
        at=now,
        note=note,
        details={"from": state.value, "to": after.value, **(details or {})},
    )
    return updated


async def _emit(
    session: AsyncSession,
    case: Row[Any],
    event_type: CaseEvent,
    *,
    trigger: Trigger,
    previous: CaseState,
    actor: Actor,
    at: datetime,
    correlation_id: str | None,
    causation: EventEnvelope[Any] | None,
    fields: Mapping[str, Any] | None,
) -> None:
    payload = EVENT_CLASSES[event_type.value](
        case_id=case.id,
        complaint_number=case.complaint_number,
        merchant_id=case.merchant_id,
        team=case.team,
        state=case.state,
        previous_state=previous.value,
        customer_visible_state=case.status,
        trigger=trigger.value,
        actor=actor.id,
        at=at,
        assignee_id=case.assignee_id,
        responsibility=case.responsibility,
        **(fields or {}),
    )
    await outbox.add(
        session,
        new_event(
            payload,
            producer=PRODUCER,
            complaint_id=case.complaint_id,
            correlation_id=correlation_id or case.correlation_id,
            causation=causation,
        ),
    )


async def _timeline(
    session: AsyncSession,
    case: Row[Any],
    *,
    actor: Actor,
    kind: str,
    at: datetime,
    note: str | None = None,
    source: str | None = None,
    evidence_refs: Sequence[str] = (),
    details: Mapping[str, Any] | None = None,
) -> None:
    await repository.add_timeline(
        session,
        {
            "id": uuid.uuid4(),
            "case_id": case.id,
            "at": at,
            "actor": actor.id,
            "service": actor.service,
            "kind": kind,
            "source": source,
            "note": note,
            "evidence_refs": list(evidence_refs),
            "details": dict(details or {}),
        },
    )


# --- Opening, re-triage, withdrawal, intake's facts ----------------------------------


async def record_complaint_facts(session: AsyncSession, facts: ComplaintFacts) -> None:
    """Keeps what the case needs of a received complaint (flags, storefront, order facts)."""
    await repository.insert_facts(
        session,
        {
            "complaint_id": facts.complaint_id,
            "storefront_id": facts.storefront_id,
            "customer_id": facts.customer_id,
            "customer_flags": list(facts.customer_flags),
            "order_amount": facts.order_amount,
            "currency": facts.currency,
            "delivered_at": facts.delivered_at,
            "demands": {k: None if v is None else str(v) for k, v in facts.demands.items()},
            "after_sales_reason": facts.after_sales_reason,
            "returnable_without_reason": facts.returnable_without_reason,
            "received_at": facts.received_at,
        },
    )


async def erase_customer(
    session: AsyncSession, *, complaint_id: UUID, customer_id: str, at: datetime
) -> None:
    """customer.erased: the customer's id on this complaint becomes its pseudonym."""
    await repository.erase_customer(
        session, complaint_id=complaint_id, pseudonym=customer_pseudonym(customer_id), at=at
    )


async def open_case(
    session: AsyncSession,
    triage: Triage,
    *,
    settings: Settings,
    causation: EventEnvelope[Any] | None = None,
) -> bool:
    """Opens the case (处理中), emits case.opened and assigns the team's least loaded agent.

    A repeated complaint.triaged (a newer triage of the same complaint) updates the case.
    """
    priority = case_priority(triage.priority)
    now = utcnow()
    case_id = uuid.uuid4()
    state = OPENING.next_state
    due = triage.first_response_due_at or now
    case = await repository.insert_case(
        session,
        {
            "id": case_id,
            "complaint_id": triage.complaint_id,
            "complaint_number": triage.complaint_number,
            "merchant_id": triage.merchant_id,
            # Kept as triage said it, known or not (the view falls back when showing it).
            "category": triage.category,
            "subcategory": triage.subcategory,
            "priority": priority.value,
            "team": triage.team,
            "responsibility_hypothesis": triage.responsibility,
            "state": state.value,
            "status": visible_state(state).value,
            "first_response_due_at": due,
            "opened_at": now,
            "updated_at": now,
            "correlation_id": triage.correlation_id,
        },
    )
    if case is None:
        await retriage_case(session, triage, settings=settings, causation=causation)
        return False
    await outbox.add(
        session,
        new_event(
            CaseOpened(
                case_id=case_id,
                complaint_number=triage.complaint_number,
                merchant_id=triage.merchant_id,
                priority=priority,
                status=CaseStatus.PROCESSING,
                first_response_due_at=due,
                opened_at=now,
                state=state.value,
                customer_visible_state=visible_state(state),
                team=triage.team,
            ),
            producer=PRODUCER,
            complaint_id=triage.complaint_id,
            correlation_id=triage.correlation_id,
            causation=causation,
        ),
    )
    # The inserted row is the case, locked by this transaction until it commits.
    await _timeline(session, case, actor=Actor(triage.by, "triage_service"), kind="opened", at=now)
    await _assign_least_loaded(session, case, settings=settings, causation=causation)
    return True


async def _assign_least_loaded(
    session: AsyncSession,
    case: Row[Any],
    *,
    settings: Settings,
    causation: EventEnvelope[Any] | None = None,
) -> Row[Any]:
    agent = await repository.least_loaded_agent(session, team=case.team, active_states=ACTIVE)
    if agent is None:
        # Nobody of the team is on the roster: the case waits in the team's queue.
        return case
    assignee = f"agent:{agent}"
    return await _fire(
        session,
        case,
        Trigger.ASSIGN,
        actor=SYSTEM,
        settings=settings,
        causation=causation,
        context={"assignee_id": assignee},
        values={"assignee_id": assignee, "assigned_at": utcnow()},
        note="least loaded agent of the team",
    )


async def retriage_case(
    session: AsyncSession,
    triage: Triage,
    *,
    settings: Settings,
    causation: EventEnvelope[Any] | None = None,
) -> None:
    """A newer triage updates the case where it stands (with case.retriaged)."""
    case = await repository.get_case_by_complaint(
        session, complaint_id=triage.complaint_id, for_update=True
    )
    if case is None:
        return
    values: dict[str, Any] = {
        "category": triage.category,
        "subcategory": triage.subcategory,
        "priority": case_priority(triage.priority).value,
        "team": triage.team,
    }
    if triage.first_response_due_at is not None:
        values["first_response_due_at"] = triage.first_response_due_at
    if triage.responsibility is not None:
        values["responsibility_hypothesis"] = triage.responsibility
    team_changed = triage.team != case.team
    if team_changed:
        values["assignee_id"] = None
    try:
        case = await _fire(
            session,
            case,
            Trigger.RETRIAGE,
            actor=Actor(triage.by, "triage_service"),
            settings=settings,
            causation=causation,
            values=values,
            note=triage.reason,
            event={"reason": triage.reason},
        )
    except TransitionConflictError:
        # A decided, closed or withdrawn case keeps the triage it was decided on.
        return
    if team_changed:
        await _assign_least_loaded(session, case, settings=settings, causation=causation)


async def withdraw_case(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    reason: str | None,
    settings: Settings,
    causation: EventEnvelope[Any] | None = None,
) -> None:
    """complaint.withdrawn: the case stops; a late withdrawal of a decided case changes nothing."""
    case = await repository.get_case_by_complaint(
        session, complaint_id=complaint_id, for_update=True
    )
    if case is None:
        return
    try:
        await _fire(
            session,
            case,
            Trigger.WITHDRAW,
            actor=Actor("customer", "intake_service"),
            settings=settings,
            causation=causation,
            note=reason,
        )
    except TransitionConflictError:
        return
    for kind in (VERIFICATION_TIMER, AUTO_CLOSE_TIMER):
        await cancel(session, timers, kind=kind, key=str(case.id))


# --- Assignment and investigation ----------------------------------------------------


async def assign(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    username: str | None,
    principal: Principal,
    settings: Settings,
) -> Row[Any]:
    """Assigns the case to a named agent of its team, or to the least loaded one."""
    case = await _visible_case(session, complaint_id, principal)
    if username is None:
        agent = await repository.least_loaded_agent(session, team=case.team, active_states=ACTIVE)
        if agent is None:
            raise UnprocessableError(f"team {case.team} has no agent to assign")
        username = agent
    member = await repository.staff_member(session, username=username)
    if member is None or member.role != "agent" or case.team not in member.teams:
        raise UnprocessableError(f"{username} is not an agent of team {case.team}")
    assignee = f"agent:{username}"
    return await _fire(
        session,
        case,
        Trigger.ASSIGN,
        actor=Actor.of(principal),
        settings=settings,
        context={"assignee_id": assignee},
        values={"assignee_id": assignee, "assigned_at": utcnow()},
        note=f"assigned to {assignee}",
    )


async def start_investigation(
    session: AsyncSession, *, complaint_id: UUID, principal: Principal, settings: Settings
) -> Row[Any]:
    """The assigned agent starts (or, after a reopening, restarts) the investigation."""
    case = await _visible_case(session, complaint_id, principal)
    return await _fire(
        session, case, Trigger.START_INVESTIGATION, actor=Actor.of(principal), settings=settings
    )


NOTE_SOURCES_BY_ROLE: Mapping[Role, tuple[str, ...]] = {
    Role.STOREFRONT: ("customer",),
    Role.MERCHANT: ("merchant",),
    Role.AGENT: ("agent", "carrier", "customer", "merchant"),
    Role.SUPERVISOR: ("agent", "carrier", "customer", "merchant"),
    Role.ADMIN: ("agent", "carrier", "customer", "merchant"),
}


async def add_note(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    principal: Principal,
    source: str | None,
    note: str,
    evidence_refs: Sequence[str],
) -> Row[Any]:
    """Adds a note or evidence to the investigation: whose words, who wrote them, when."""
    case = await _visible_case(session, complaint_id, principal, lock=False)
    allowed = NOTE_SOURCES_BY_ROLE.get(principal.role, ())
    source = source or allowed[0]
    if source not in allowed:
        raise UnprocessableError(f"a {principal.role} may not record a {source}'s note")
    await _timeline(
        session,
        case,
        actor=Actor.of(principal),
        kind="note",
        at=utcnow(),
        note=note,
        source=source,
        evidence_refs=evidence_refs,
    )
    return case


# --- Merchant verification -----------------------------------------------------------


def _verification_request(settings: Settings, now: datetime) -> tuple[datetime, SlaClock]:
    if settings.verification_response_seconds is not None:
        span = timedelta(seconds=settings.verification_response_seconds)
        return now + span, SlaClock.start(span, now)
    budget = TimeBudget.parse(settings.verification_response_time)
    calendar = load_calendar(settings.calendar)
    return budget.due_at(now, calendar), budget.clock(now, calendar)


async def request_verification(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    questions: Sequence[str],
    principal: Principal,
    settings: Settings,
) -> Row[Any]:
    """Asks the merchant to verify by a deadline in business time, on a durable timer."""
    case = await _visible_case(session, complaint_id, principal)
    now = utcnow()
    due, _ = _verification_request(settings, now)
    case = await _fire(
        session,
        case,
        Trigger.REQUEST_MERCHANT_VERIFICATION,
        actor=Actor.of(principal),
        settings=settings,
        values={
            "verification_requested_at": now,
            "verification_due_at": due,
            "verification": {"questions": list(questions)},
        },
        event={"questions": list(questions), "requested_at": now, "respond_by": due},
    )
    await schedule(
        session,
        timers,
        kind=VERIFICATION_TIMER,
        key=str(case.id),
        due_at=due,
        payload={"complaint_id": str(complaint_id), "correlation_id": case.correlation_id},
    )
    return case


def _stored_request(case: Row[Any]) -> VerificationRequest:
    requested, due = case.verification_requested_at, case.verification_due_at
    return VerificationRequest(
        requested_at=requested,
        due_at=due,
        clock=SlaClock.start(due - requested, requested),
        counts_business_time=False,
        questions=tuple((case.verification or {}).get("questions", ())),
    )


def _outcome_json(outcome: VerificationOutcome) -> dict[str, Any]:
    answer = outcome.answer
    return {
        "result": outcome.result.value,
        "proceeds_against_merchant": outcome.proceeds_against_merchant,
        "reason": outcome.reason,
        "late": outcome.late,
        "stance": answer.stance.value if answer else None,
        "statement": answer.statement if answer else None,
        "evidence_refs": list(answer.evidence_ids) if answer else [],
    }


def _outcome_from_json(data: Mapping[str, Any] | None) -> VerificationOutcome | None:
    if not data or "result" not in data:
        return None
    return VerificationOutcome(
        VerificationResult(data["result"]),
        proceeds_against_merchant=bool(data["proceeds_against_merchant"]),
        reason=str(data["reason"]),
        late=bool(data.get("late")),
    )


async def answer_verification(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    stance: str,
    statement: str,
    evidence_refs: Sequence[str],
    principal: Principal,
    settings: Settings,
) -> Row[Any]:
    """The merchant's answer: accept responsibility, or dispute it with evidence."""
    case = await _visible_case(session, complaint_id, principal)
    if case.verification_requested_at is None or case.state != CaseState.AWAITING_MERCHANT:
        raise TransitionConflictError(
            f"no verification is awaited from the merchant (state {case.state})",
            state=case.state,
            trigger=Trigger.MERCHANT_ANSWERS.value,
            allowed_triggers=[],
            failed_guards=[],
        )
    answer = MerchantAnswer(Stance(stance), utcnow(), statement, tuple(evidence_refs))
    try:
        outcome = record_answer(_stored_request(case), answer)
    except VerificationError as refused:
        raise UnprocessableError(str(refused)) from refused
    case = await _fire(
        session,
        case,
        Trigger.MERCHANT_ANSWERS,
        actor=Actor.of(principal),
        settings=settings,
        values={"verification": {**(case.verification or {}), **_outcome_json(outcome)}},
        event={"stance": stance, "evidence_refs": list(evidence_refs)},
        note=statement or None,
        details={"result": outcome.result.value, "late": outcome.late},
    )
    await _timeline(
        session,
        case,
        actor=Actor.of(principal),
        kind="evidence",
        at=utcnow(),
        source="merchant",
        note=statement or None,
        evidence_refs=evidence_refs,
    )
    await cancel(session, timers, kind=VERIFICATION_TIMER, key=str(case.id))
    return case


async def verification_deadline_passed(
    session: AsyncSession, *, complaint_id: UUID, settings: Settings
) -> bool:
    """The timer: a merchant silent past the deadline; the case proceeds against it."""
    case = await repository.get_case_by_complaint(
        session, complaint_id=complaint_id, for_update=True
    )
    if case is None or case.state != CaseState.AWAITING_MERCHANT:
        return False
    now = utcnow()
    try:
        outcome = deadline_missed(_stored_request(case), now)
    except VerificationError:
        return False
    try:
        await _fire(
            session,
            case,
            Trigger.VERIFICATION_DEADLINE_PASSES,
            actor=SYSTEM,
            settings=settings,
            values={"verification": {**(case.verification or {}), **_outcome_json(outcome)}},
            event={"respond_by": case.verification_due_at, "reason": outcome.reason},
            note=outcome.reason,
        )
    except TransitionConflictError:
        # A late or repeated firing: the guard saw the deadline not passed, or the case moved.
        return False
    return True


async def on_verification_timer(session: AsyncSession, timer: Timer, settings: Settings) -> None:
    """Fires the verification deadline of the timer's case."""
    await verification_deadline_passed(
        session, complaint_id=UUID(timer.payload["complaint_id"]), settings=settings
    )


# --- Responsibility and proposals ----------------------------------------------------


def proposal_to_json(proposal: Proposal, *, approval_limit: Decimal) -> dict[str, Any]:
    """Everything a stored proposal needs to be read back (domain.policy.Proposal)."""
    remedies = []
    for remedy in proposal.remedies:
        data = remedy.as_dict()
        data["description"] = remedy.describe()
        remedies.append(data)
    return {
        "policy_version": proposal.policy_version,
        "currency": proposal.currency,
        "order_amount": str(proposal.order_amount),
        "responsibility": proposal.responsibility.value,
        "remedies": remedies,
        "rules_applied": [
            {"rule_id": r.rule_id, "reason": r.reason, "detail": r.detail}
            for r in proposal.rules_applied
        ],
        "caps_applied": [
            {
                "rule_id": c.rule_id,
                "remedy": c.remedy.value,
                "uncapped": str(c.uncapped),
                "capped": str(c.capped),
                "reason": c.reason,
            }
            for c in proposal.caps_applied
        ],
        "approval": {
            "required": proposal.approval.required,
            "reasons": list(proposal.approval.reasons),
        },
        "approval_limit": str(approval_limit),
        "demanded_compensation": None
        if proposal.demanded_compensation is None
        else str(proposal.demanded_compensation),
        "total_value": str(proposal.total_value),
        "offer_hash": offer_hash(proposal),
    }


_DECIMAL_FIELDS = ("amount", "coupon_threshold")
_PARTY_FIELDS = ("paid_by", "return_shipping_paid_by")


def _remedy_from_json(data: Mapping[str, Any]) -> Remedy:
    values = {k: v for k, v in data.items() if k in Remedy.__dataclass_fields__}
    for name in _DECIMAL_FIELDS:
        if values.get(name) is not None:
            values[name] = Decimal(values[name])
    for name in _PARTY_FIELDS:
        if values.get(name) is not None:
            values[name] = Party(values[name])
    values["kind"] = RemedyKind(values["kind"])
    values["source"] = RemedySource(values["source"])
    return Remedy(**values)


def proposal_from_json(data: Mapping[str, Any]) -> Proposal:
    """The stored proposal as the domain's Proposal (its offer hash unchanged)."""
    demanded = data.get("demanded_compensation")
    return Proposal(
        remedies=tuple(_remedy_from_json(r) for r in data["remedies"]),
        policy_version=data["policy_version"],
        currency=data["currency"],
        order_amount=Decimal(data["order_amount"]),
        responsibility=Responsibility(data["responsibility"]),
        rules_applied=tuple(
            RuleApplied(r["rule_id"], r["reason"], r["detail"]) for r in data["rules_applied"]
        ),
        caps_applied=tuple(
            CapApplied(
                c["rule_id"],
                RemedyKind(c["remedy"]),
                Decimal(c["uncapped"]),
                Decimal(c["capped"]),
                c["reason"],
            )
            for c in data["caps_applied"]
        ),
        approval=Approval(data["approval"]["required"], tuple(data["approval"]["reasons"])),
        demanded_compensation=None if demanded is None else Decimal(demanded),
    )


async def _case_facts(
    session: AsyncSession, case: Row[Any], responsibility: Responsibility
) -> CaseFacts:
    facts = await repository.get_facts(session, complaint_id=case.complaint_id)
    demands: dict[str, Decimal | None] = {}
    order_amount = Decimal(0)
    currency = "CNY"
    days_since_delivery = None
    flags: frozenset[str] = frozenset()
    after_sales_reason = None
    returnable = True
    if facts is not None:
        demands = {k: None if v is None else Decimal(v) for k, v in facts.demands.items()}
        order_amount = facts.order_amount or Decimal(0)
        currency = facts.currency
        if facts.delivered_at is not None:
            days_since_delivery = max((utcnow() - facts.delivered_at).days, 0)
        flags = frozenset(facts.customer_flags)
        after_sales_reason = facts.after_sales_reason
        returnable = facts.returnable_without_reason
    if case.demanded_compensation is not None:
        demands["compensation"] = case.demanded_compensation
    return CaseFacts(
        case.category,
        case.subcategory,
        responsibility,
        order_amount,
        currency=currency,
        demands=demands,
        after_sales_reason=after_sales_reason,
        days_since_delivery=days_since_delivery,
        returnable_without_reason=returnable,
        customer_flags=flags,
    )


def _limit(principal: Principal, settings: Settings) -> Decimal:
    if principal.role in (Role.SUPERVISOR, Role.ADMIN):
        return settings.supervisor_approval_limit
    return settings.agent_approval_limit


def _offer_fields(proposal: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "remedies": _remedy_lines(proposal),
        "offer_total": Decimal(proposal["total_value"]),
        "policy_version": proposal["policy_version"],
        "rules_applied": [r["rule_id"] for r in proposal["rules_applied"]],
        "approval_reasons": proposal["approval"]["reasons"],
        "offer_hash": proposal["offer_hash"],
    }


async def _route_offer(
    session: AsyncSession, case: Row[Any], *, actor: Actor, settings: Settings
) -> Row[Any]:
    """A proposal goes to a supervisor when it needs approval, else straight to the customer."""
    proposal = case.proposal
    trigger = (
        Trigger.SUBMIT_FOR_APPROVAL
        if proposal["approval"]["required"]
        else Trigger.OFFER_TO_CUSTOMER
    )
    return await _fire(
        session, case, trigger, actor=actor, settings=settings, event=_offer_fields(proposal)
    )


async def propose_remedy(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    principal: Principal,
    settings: Settings,
    finding: tuple[str, str] | None = None,
    goodwill: Sequence[Goodwill] = (),
    carrier_id: str | None = None,
) -> Row[Any]:
    """Decides responsibility (with reasons) and proposes the policy's remedies.

    Responsibility starts from triage's hypothesis, takes the merchant's verification and the
    agent's finding (responsibility, reason); without a decision no remedy is proposed. A
    proposal that is a rejection decides the case with its explanation.
    """
    case = await _visible_case(session, complaint_id, principal)
    decision = decide_responsibility(
        case.responsibility_hypothesis,
        verification=_outcome_from_json(case.verification),
        finding=Finding(Responsibility(finding[0]), finding[1], principal.id) if finding else None,
    )
    if not decision.decided:
        return await _fire(
            session,
            case,
            Trigger.PROPOSE_REMEDY,
            actor=Actor.of(principal),
            settings=settings,
            context={"responsibility_decided": False},
        )
    limit = _limit(principal, settings)
    facts = await _case_facts(session, case, decision.responsibility)
    try:
        proposal = evaluate(
            facts,
            approval_limit=limit,
            goodwill=goodwill,
            policy=load_policy(settings.policy_version),
        )
    except (PolicyError, ValueError) as refused:
        raise UnprocessableError(str(refused)) from refused
    return await _store_proposal(
        session,
        case,
        proposal,
        decision=decision,
        principal=principal,
        settings=settings,
        carrier_id=carrier_id,
    )


async def _store_proposal(
    session: AsyncSession,
    case: Row[Any],
    proposal: Proposal,
    *,
    decision: ResponsibilityDecision | None,
    principal: Principal,
    settings: Settings,
    trigger: Trigger = Trigger.PROPOSE_REMEDY,
    carrier_id: str | None = None,
) -> Row[Any]:
    stored = proposal_to_json(proposal, approval_limit=_limit(principal, settings))
    # The carrier a logistics responsibility charges, named by the agent's finding.
    stored["carrier_id"] = carrier_id or (case.proposal or {}).get("carrier_id")
    values: dict[str, Any] = {"proposal": stored, "proposed_by": principal.id}
    context: dict[str, Any] = {}
    if decision is not None:
        values["responsibility"] = decision.responsibility.value
        values["responsibility_reasons"] = list(decision.reasons)
        context["responsibility_decided"] = True
    actor = Actor.of(principal)
    if proposal.is_rejection:
        explanation = next(
            (r.text for r in proposal.remedies if r.kind is RemedyKind.REJECTION and r.text),
            "; ".join(r.reason for r in proposal.rules_applied),
        )
        now = utcnow()
        case = await _fire(
            session,
            case,
            Trigger.REJECT_CASE,
            actor=actor,
            settings=settings,
            context={**context, "reason": explanation},
            values={**values, **_decision_values(now, principal.id, settings)},
            event={**_offer_fields(stored), "reason": explanation},
            note=explanation,
        )
        await _schedule_auto_close(session, case)
        return case
    case = await _fire(
        session,
        case,
        trigger,
        actor=actor,
        settings=settings,
        context=context,
        values=values,
        event=_offer_fields(stored),
        details={"reasons": values.get("responsibility_reasons", [])},
    )
    return await _route_offer(session, case, actor=actor, settings=settings)


async def approve(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    approved: bool,
    reason: str | None,
    principal: Principal,
    settings: Settings,
) -> Row[Any]:
    """A supervisor approves the proposal (it goes to the customer) or rejects it with a reason."""
    case = await _visible_case(session, complaint_id, principal)
    proposal = case.proposal or {}
    if approved:
        return await _fire(
            session,
            case,
            Trigger.SUPERVISOR_APPROVES,
            actor=Actor.of(principal),
            settings=settings,
            event=_offer_fields(proposal) if proposal else {},
            note=reason,
        )
    return await _fire(
        session,
        case,
        Trigger.SUPERVISOR_REJECTS,
        actor=Actor.of(principal),
        settings=settings,
        context={"reason": reason},
        event={"reason": reason},
        note=reason,
    )


# --- The customer's decision, negotiation, mediation, referral -----------------------


async def customer_decides(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    accept: bool,
    offer_hash_seen: str | None,
    demanded_compensation: Decimal | None,
    channel: str,
    principal: Principal,
    settings: Settings,
) -> Row[Any]:
    """The customer accepts the offer (proof of consent stored) or rejects it (negotiation)."""
    case = await _visible_case(session, complaint_id, principal)
    if case.proposal is None or case.state != CaseState.AWAITING_CUSTOMER:
        trigger = Trigger.CUSTOMER_ACCEPTS if accept else Trigger.CUSTOMER_REJECTS
        return await _fire(session, case, trigger, actor=Actor.of(principal), settings=settings)
    proposal = proposal_from_json(case.proposal)
    current_hash = offer_hash(proposal)
    if offer_hash_seen is not None and offer_hash_seen != current_hash:
        raise ConflictError("the offer changed since the customer saw it", offer_hash=current_hash)
    actor = Actor.of(principal)
    if not accept:
        return await _fire(
            session,
            case,
            Trigger.CUSTOMER_REJECTS,
            actor=actor,
            settings=settings,
            values={
                "negotiation_rounds": case.negotiation_rounds + 1,
                "demanded_compensation": demanded_compensation,
            },
            event={"negotiation_round": case.negotiation_rounds + 1, "offer_hash": current_hash},
            details={"demanded_compensation": str(demanded_compensation)}
            if demanded_compensation is not None
            else None,
        )
    facts = await repository.get_facts(session, complaint_id=complaint_id)
    customer = principal.customer_id or (facts.customer_id if facts is not None else None)
    if customer is None:
        raise UnprocessableError("the customer accepting is not known: send X-Customer-ID")
    if facts is not None and facts.erased_at is not None:
        customer = facts.customer_id
    now = utcnow()
    consent = record_consent(proposal, customer_id=customer, at=now, channel=channel)
    await repository.add_consent(
        session,
        {
            "id": uuid.uuid4(),
            "case_id": case.id,
            "customer_id": consent.customer_id,
            "consented_at": consent.consented_at,
            "channel": consent.channel,
            "offer": consent.offer,
            "offer_hash": consent.offer_hash,
            "summary": list(consent.summary),
        },
    )
    case = await _fire(
        session,
        case,
        Trigger.CUSTOMER_ACCEPTS,
        actor=actor,
        settings=settings,
        context={"consent_recorded": True},
        values={"accepted_offer": case.proposal},
        event={**_offer_fields(case.proposal), "offer_hash": consent.offer_hash},
    )
    return await _start_execution(session, case, principal=principal, settings=settings)


async def _start_execution(
    session: AsyncSession, case: Row[Any], *, principal: Principal | None, settings: Settings
) -> Row[Any]:
    """The accepted offer becomes tasks; who pays each cost goes to the ledger."""
    proposal = proposal_from_json(case.accepted_offer)
    now = utcnow()
    tasks = _plan(case, proposal, now, settings)
    decision = ResponsibilityDecision(
        responsibility=proposal.responsibility,
        hypothesis=proposal.responsibility,
        reasons=tuple(case.responsibility_reasons),
        decided=True,
    )
    carrier_id = case.accepted_offer.get("carrier_id")
    entries = ledger_entries(
        proposal.remedies, decision, merchant_id=case.merchant_id, carrier_id=carrier_id
    )
    await repository.add_ledger_entries(
        session,
        (
            {
                "id": uuid.uuid4(),
                "case_id": case.id,
                "merchant_id": case.merchant_id,
                "party": entry.party.value,
                "party_id": entry.party_id,
                "amount": entry.amount,
                "currency": entry.currency,
                "remedy": entry.remedy.value,
                "cost": entry.cost.value,
                "reason": entry.reason,
                "recorded_at": now,
            }
            for entry in entries
        ),
    )
    return await _fire(
        session,
        case,
        Trigger.START_EXECUTION,
        actor=Actor.of(principal) if principal else SYSTEM,
        settings=settings,
        context={"task_count": len(tasks)},
        values={"execution_started_at": now},
        details={"tasks": [t.key for t in tasks]},
    )


async def counter(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    compensation: Decimal | None,
    principal: Principal,
    settings: Settings,
) -> Row[Any]:
    """The agent's counter-offer: one step towards the customer's demand, within the ceiling."""
    case = await _visible_case(session, complaint_id, principal)
    if case.proposal is None or case.state != CaseState.NEGOTIATING:
        return await _fire(
            session, case, Trigger.COUNTER_OFFER, actor=Actor.of(principal), settings=settings
        )
    _ensure_allowed(case, Trigger.COUNTER_OFFER, settings)
    current = proposal_from_json(case.proposal)
    facts = await _case_facts(session, case, current.responsibility)
    try:
        offer = counter_offer(
            current,
            facts=facts,
            stage=Stage.NEGOTIATION,
            approval_limit=_limit(principal, settings),
            compensation=compensation,
            demanded_compensation=case.demanded_compensation,
        )
    except NegotiationRefused as refused:
        raise UnprocessableError(str(refused)) from refused
    return await _store_proposal(
        session,
        case,
        offer,
        decision=None,
        principal=principal,
        settings=settings,
        trigger=Trigger.COUNTER_OFFER,
    )


async def escalate_to_mediation(
    session: AsyncSession, *, complaint_id: UUID, principal: Principal, settings: Settings
) -> Row[Any]:
    """Negotiation used its rounds: a supervisor mediates."""
    case = await _visible_case(session, complaint_id, principal)
    return await _fire(
        session,
        case,
        Trigger.ESCALATE_TO_MEDIATION,
        actor=Actor.of(principal),
        settings=settings,
        values={"mediation_held": True},
    )


async def mediate(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    compensation: Decimal | None,
    concessions: Sequence[Concession],
    principal: Principal,
    settings: Settings,
) -> Row[Any]:
    """The mediating supervisor's offer: a higher ceiling and the policy's concessions."""
    case = await _visible_case(session, complaint_id, principal)
    if case.proposal is None or case.state != CaseState.IN_MEDIATION:
        return await _fire(
            session, case, Trigger.PROPOSE_REMEDY, actor=Actor.of(principal), settings=settings
        )
    current = proposal_from_json(case.proposal)
    facts = await _case_facts(session, case, current.responsibility)
    try:
        offer = counter_offer(
            current,
            facts=facts,
            stage=Stage.MEDIATION,
            approval_limit=_limit(principal, settings),
            compensation=compensation,
            concessions=concessions,
            demanded_compensation=case.demanded_compensation,
        )
    except NegotiationRefused as refused:
        raise UnprocessableError(str(refused)) from refused
    return await _store_proposal(
        session, case, offer, decision=None, principal=principal, settings=settings
    )


async def refer(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    body: str,
    principal: Principal,
    settings: Settings,
) -> Row[Any]:
    """Refers the dispute to an outside body (consumer association, dispute centre...)."""
    case = await _visible_case(session, complaint_id, principal)
    return await _fire(
        session,
        case,
        Trigger.REFER_EXTERNALLY,
        actor=Actor.of(principal),
        settings=settings,
        values={"referral": {"body": body}},
        event={"referral_body": body},
    )


async def record_external_outcome(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    settled: bool,
    summary: str,
    principal: Principal,
    settings: Settings,
) -> Row[Any]:
    """The outside body's outcome: a settlement (the offer on the table is carried out) or a
    dismissal (the case is decided against the complaint)."""
    case = await _visible_case(session, complaint_id, principal)
    actor = Actor.of(principal)
    referral = {**(case.referral or {}), "outcome": "settled" if settled else "dismissed"}
    if settled:
        case = await _fire(
            session,
            case,
            Trigger.RECORD_EXTERNAL_SETTLEMENT,
            actor=actor,
            settings=settings,
            values={"referral": referral, "accepted_offer": case.proposal},
            event={"reason": summary},
            note=summary,
        )
        if case.accepted_offer is None:
            raise UnprocessableError("a settlement needs the offer it settles on")
        return await _start_execution(session, case, principal=principal, settings=settings)
    now = utcnow()
    case = await _fire(
        session,
        case,
        Trigger.RECORD_EXTERNAL_DISMISSAL,
        actor=actor,
        settings=settings,
        context={"reason": summary},
        values={"referral": referral, **_decision_values(now, principal.id, settings)},
        event={"reason": summary},
        note=summary,
    )
    await _schedule_auto_close(session, case)
    return case


# --- Execution -----------------------------------------------------------------------


def _plan(case: Row[Any], proposal: Proposal, at: datetime, settings: Settings) -> tuple[Task, ...]:
    return plan_tasks(
        proposal.remedies,
        complaint_number=case.complaint_number,
        planned_at=at,
        calendar=load_calendar(settings.calendar),
        return_address=settings.return_address,
    )


TASK_ACTIONS = (
    "start",
    "record",
    "receive_return",
    "inspect",
    "issue_coupon",
    "complete",
    "fail",
    "retry",
)


def _apply_report(
    tasks: tuple[Task, ...], key: str, action: str, facts: Mapping[str, Any], at: datetime, cal: Any
) -> tuple[tuple[Task, ...], Task]:
    """One report applied to the case's tasks (TaskRefused when the task does not allow it)."""
    task = next((t for t in tasks if t.key == key), None)
    if task is None:
        raise TaskRefused(f"no task {key}; the tasks are {', '.join(t.key for t in tasks)}")
    if task.clock is None and action != "record":
        raise TaskRefused(f"task {key} waits for {task.after}")
    if action in ("start", "complete", "fail", "retry"):
        task = fire_task(task, TaskTrigger(action), at=at, reason=str(facts.get("reason", "")))
    elif action == "record":
        task = record(task, at=at, **dict(facts))
    elif action == "receive_return":
        task = receive_return(task, at=at, calendar=cal)
    elif action == "inspect":
        task = inspect_return(
            task,
            result=InspectionResult(facts.get("result", "")),
            note=str(facts.get("note", "")),
            at=at,
        )
    elif action == "issue_coupon":
        task = issue_coupon(task, code=str(facts.get("code", "")), at=at)
    else:
        raise TaskRefused(f"unknown task action {action}; known: {', '.join(TASK_ACTIONS)}")
    updated = tuple(task if t.key == key else t for t in tasks)
    if task.state is TaskState.DONE:
        updated = release_waiting(updated, task, calendar=cal)
    return updated, task


async def current_tasks(
    session: AsyncSession, case: Row[Any], settings: Settings
) -> tuple[Task, ...]:
    """The case's tasks: planned from the accepted offer, then every report replayed."""
    if case.accepted_offer is None or case.execution_started_at is None:
        return ()
    cal = load_calendar(settings.calendar)
    tasks = _plan(
        case, proposal_from_json(case.accepted_offer), case.execution_started_at, settings
    )
    for report in await repository.task_reports_of(session, case_id=case.id):
        tasks, _ = _apply_report(
            tasks, report.task_key, report.action, report.facts, report.at, cal
        )
    return tasks


async def report_task(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    task_key: str,
    action: str,
    facts: Mapping[str, Any],
    principal: Principal,
    settings: Settings,
) -> Row[Any]:
    """Progress on an execution task (merchant systems and agents); all done: resolved."""
    case = await _visible_case(session, complaint_id, principal)
    if case.state != CaseState.EXECUTING:
        return await _fire(
            session, case, Trigger.UPDATE_TASK, actor=Actor.of(principal), settings=settings
        )
    cal = load_calendar(settings.calendar)
    reports = await repository.task_reports_of(session, case_id=case.id)
    tasks = await current_tasks(session, case, settings)
    now = utcnow()
    try:
        tasks, task = _apply_report(tasks, task_key, action, _parse_facts(facts), now, cal)
    except (TaskRefused, ValueError, TypeError) as refused:
        raise UnprocessableError(str(refused)) from refused
    await repository.add_task_report(
        session,
        {
            "id": uuid.uuid4(),
            "case_id": case.id,
            "seq": len(reports) + 1,
            "task_key": task_key,
            "action": action,
            "facts": dict(facts),
            "at": now,
            "actor": principal.id,
        },
    )
    done = task.state is TaskState.DONE and action == "complete"
    case = await _fire(
        session,
        case,
        Trigger.COMPLETE_TASK if done else Trigger.UPDATE_TASK,
        actor=Actor.of(principal),
        settings=settings,
        event={
            "task_key": task.key,
            "task_kind": task.kind.value,
            "task_state": task.state.value,
            "task_due_at": task.due_at(cal),
        },
        details={"task": task.key, "action": action},
    )
    if done and all_tasks_done(tasks):
        case = await _resolve(session, case, tasks, principal=principal, settings=settings)
    return case


def _parse_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Dates in a report arrive as ISO text."""
    parsed = dict(facts)
    for name in ("received_at", "expires_at"):
        if isinstance(parsed.get(name), str):
            parsed[name] = datetime.fromisoformat(parsed[name])
    return parsed


def _closure_policy(settings: Settings) -> ClosurePolicy:
    return ClosurePolicy(
        auto_close_after=TimeBudget.parse(settings.auto_close_after),
        appeal_window=TimeBudget.parse(settings.appeal_window),
    )


def _decision_values(now: datetime, decided_by: str, settings: Settings) -> dict[str, Any]:
    policy = _closure_policy(settings)
    close_at = auto_close_at(now, policy=policy)
    if settings.auto_close_after_seconds is not None:
        close_at = now + timedelta(seconds=settings.auto_close_after_seconds)
    return {
        "decided_at": now,
        "decided_by": decided_by,
        "auto_close_at": close_at,
        "appeal_window_ends_at": appeal_window_ends_at(now, policy=policy),
    }


async def _resolve(
    session: AsyncSession,
    case: Row[Any],
    tasks: tuple[Task, ...],
    *,
    principal: Principal,
    settings: Settings,
) -> Row[Any]:
    now = utcnow()
    decided = _decision_values(now, case.proposed_by or principal.id, settings)
    case = await _fire(
        session,
        case,
        Trigger.FINISH_EXECUTION,
        actor=Actor.of(principal),
        settings=settings,
        context={"task_count": len(tasks), "tasks_done": len(tasks)},
        values=decided,
        event={
            **_offer_fields(case.accepted_offer),
            "resolved_at": now,
            "auto_close_at": decided["auto_close_at"],
            "appeal_window_ends_at": decided["appeal_window_ends_at"],
        },
    )
    await _schedule_auto_close(session, case)
    return case


# --- Closure and appeal --------------------------------------------------------------


async def _schedule_auto_close(session: AsyncSession, case: Row[Any]) -> None:
    await schedule(
        session,
        timers,
        kind=AUTO_CLOSE_TIMER,
        key=str(case.id),
        due_at=case.auto_close_at,
        payload={"complaint_id": str(case.complaint_id), "correlation_id": case.correlation_id},
    )


async def auto_close(session: AsyncSession, *, complaint_id: UUID, settings: Settings) -> bool:
    """The timer: a resolved or rejected case closes on its own; a stale firing does nothing."""
    case = await repository.get_case_by_complaint(
        session, complaint_id=complaint_id, for_update=True
    )
    if case is None:
        return False
    try:
        await _fire(
            session,
            case,
            Trigger.AUTO_CLOSE,
            actor=SYSTEM,
            settings=settings,
            event={"appeal_window_ends_at": case.appeal_window_ends_at},
        )
    except TransitionConflictError:
        return False
    return True


async def on_auto_close_timer(session: AsyncSession, timer: Timer, settings: Settings) -> None:
    """Closes the timer's case if it is still due."""
    await auto_close(session, complaint_id=UUID(timer.payload["complaint_id"]), settings=settings)


async def appeal(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    reason: str,
    principal: Principal,
    settings: Settings,
) -> Row[Any]:
    """The customer appeals (申诉) the decision within the window, once."""
    case = await _visible_case(session, complaint_id, principal)
    case = await _fire(
        session,
        case,
        Trigger.APPEAL,
        actor=Actor.of(principal),
        settings=settings,
        values={"appealed_before": True},
        event={"appeal_window_ends_at": case.appeal_window_ends_at},
        details={"reason_given": bool(reason.strip())},
    )
    await cancel(session, timers, kind=AUTO_CLOSE_TIMER, key=str(case.id))
    return case


async def start_review(
    session: AsyncSession, *, complaint_id: UUID, principal: Principal, settings: Settings
) -> Row[Any]:
    """A supervisor other than the case's agent takes up the appeal."""
    case = await _visible_case(session, complaint_id, principal)
    return await _fire(
        session,
        case,
        Trigger.START_REVIEW,
        actor=Actor.of(principal),
        settings=settings,
        context={"reviewer_id": principal.id},
        values={"reviewer_id": principal.id},
    )


async def decide_review(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    reopen: bool,
    reason: str,
    principal: Principal,
    settings: Settings,
) -> Row[Any]:
    """The review upholds the decision (closed for good) or reopens the case."""
    case = await _visible_case(session, complaint_id, principal)
    if case.reviewer_id is not None and case.reviewer_id != principal.id:
        raise UnprocessableError(f"the review is {case.reviewer_id}'s")
    trigger = Trigger.REOPEN if reopen else Trigger.UPHOLD_DECISION
    values: dict[str, Any] = {}
    if reopen:
        # The investigation starts over: a new offer is needed, and a new decision.
        values = {"proposal": None, "accepted_offer": None, "execution_started_at": None}
    return await _fire(
        session,
        case,
        trigger,
        actor=Actor.of(principal),
        settings=settings,
        context={"reason": reason},
        values=values,
        event={"reason": reason},
        note=reason,
    )


# --- Idempotency-Keys ----------------------------------------------------------------

# Keys are kept at least this long (a retry a day later still replays).
IDEMPOTENCY_KEY_DAYS = 2


async def claim_idempotency_key(
    session: AsyncSession, *, caller: str, key: str, request: str
) -> dict[str, Any] | None:
    """Claims a caller's key for a request: None to act, or the first response to replay.

    The same key with another request is 422, never a replay of something else.
    """
    digest = hashlib.sha256(request.encode()).hexdigest()
    record = await repository.claim_key(
        session, caller=caller, key=key, request_sha256=digest, at=utcnow()
    )
    if record is None:
        return None
    if record.request_sha256 != digest or record.response is None:
        raise UnprocessableError(f"Idempotency-Key {key!r} was used for another request")
    stored: dict[str, Any] = record.response
    return stored


async def remember_response(
    session: AsyncSession, *, caller: str, key: str, response: dict[str, Any]
) -> None:
    """Stores the response a claimed key replays, in the action's transaction."""
    await repository.store_response(session, caller=caller, key=key, response=response)


async def purge_idempotency_keys(session: AsyncSession, now: datetime) -> int:
    """Maintenance: forgets keys past their retention."""
    return await repository.purge_keys(session, before=now - timedelta(days=IDEMPOTENCY_KEY_DAYS))


# --- Reading -------------------------------------------------------------------------


async def get_case(session: AsyncSession, *, complaint_id: UUID, principal: Principal) -> Row[Any]:
    """Gets the case of a complaint, if the caller's scope covers it."""
    return await _visible_case(session, complaint_id, principal, lock=False)


async def case_detail(
    session: AsyncSession, *, complaint_id: UUID, principal: Principal, settings: Settings
) -> dict[str, Any]:
    """The case with its timeline, tasks, proof of consent and the triggers allowed now."""
    case = await _visible_case(session, complaint_id, principal, lock=False)
    lines = await repository.timeline(session, case_id=case.id)
    tasks = await current_tasks(session, case, settings)
    consent = await repository.latest_consent(session, case_id=case.id)
    cal = load_calendar(settings.calendar)
    allowed = allowed_triggers(CaseState(case.state), _context(case, utcnow(), settings))
    return {
        "case": case,
        "timeline": lines,
        "tasks": [
            {
                "key": t.key,
                "kind": t.kind.value,
                "state": t.state.value,
                "performer": t.performer.value,
                "due_at": t.due_at(cal),
                "after": t.after,
                "failure_reason": t.failure_reason,
            }
            for t in tasks
        ],
        "consent": consent,
        "allowed_triggers": [t.value for t in allowed],
    }


async def team_queue(
    session: AsyncSession, *, team: str, principal: Principal
) -> Sequence[Row[Any]]:
    """The active cases of a team the caller belongs to (another team's: 404)."""
    ensure_visible(principal, f"no queue for team {team}", team=team)
    return await repository.queue(session, states=ACTIVE, team=team)


async def agent_queue(session: AsyncSession, *, principal: Principal) -> Sequence[Row[Any]]:
    """The caller's own active cases."""
    return await repository.queue(session, states=ACTIVE, assignee_id=principal.id)


async def list_cases(
    session: AsyncSession, *, principal: Principal, state: str | None, limit: int
) -> Sequence[Row[Any]]:
    """The cases the caller's scope covers: a merchant's own, a team's, or (admins) all."""
    states = (state,) if state is not None else tuple(s.value for s in CaseState)
    if principal.role is Role.MERCHANT:
        return await repository.queue(
            session, states=states, merchant_id=principal.merchant_id or "", limit=limit
        )
    if principal.role is Role.ADMIN:
        return await repository.queue(session, states=states, limit=limit)
    return await repository.queue(
        session, states=states, teams=sorted(principal.teams), limit=limit
    )


async def ledger_totals(
    session: AsyncSession, *, merchant_id: str | None, carrier_id: str | None, principal: Principal
) -> tuple[str, str, Sequence[Row[Any]]]:
    """Totals of the liability ledger for one merchant or one carrier."""
    if (merchant_id is None) == (carrier_id is None):
        raise UnprocessableError("name exactly one of merchant_id and carrier_id")
    if merchant_id is not None:
        if principal.role is Role.MERCHANT and principal.merchant_id != merchant_id:
            raise NotFoundError(f"no ledger for merchant {merchant_id}")
        party, party_id = Party.MERCHANT.value, merchant_id
    else:
        if principal.role is Role.MERCHANT:
            raise NotFoundError(f"no ledger for carrier {carrier_id}")
        party, party_id = Party.CARRIER.value, str(carrier_id)
    return party, party_id, await repository.ledger_totals(session, party=party, party_id=party_id)
