"""Triage orchestration: load, apply the rules of `domain/`, store, schedule, emit. Never commits.

One durable timer per complaint (kind `triage.sla`, key the complaint id) is due at the next
thing its SLA has to announce (`domain/sla.py`); every change that moves the deadlines
(triage, re-triage, a group raise, a pause or resume, a stop) moves or cancels it in the same
transaction, and when it fires, `fire_sla_timer` announces what is due and moves it on.
"""

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal, ensure_visible
from shared.calendar import SlaClock
from shared.errors import ConflictError, NotFoundError, UnprocessableError
from shared.events import (
    ComplaintEscalated,
    ComplaintReceived,
    ComplaintRetriaged,
    ComplaintSlaBreached,
    ComplaintSlaWarning,
    ComplaintTriaged,
    CustomerErased,
    EventEnvelope,
    EventPayload,
    new_event,
)
from shared.events.vocabulary import Priority, known
from shared.pii import customer_pseudonym
from shared.time import utcnow
from shared.timers import Timer, cancel, schedule, schedule_again
from triage_service import repository
from triage_service.config import Settings
from triage_service.domain.classifier import (
    Complaint,
    LabelledComplaint,
    TriageModel,
    packaged_examples,
    retrain,
)
from triage_service.domain.deadlines import Deadline, Deadlines, Pause, compute_deadlines
from triage_service.domain.decision import decide
from triage_service.domain.groups import GroupCount, group_keys, group_reason, joined_group
from triage_service.domain.priority import highest
from triage_service.domain.retriage import RetriageError, TriageTags, apply_retriage
from triage_service.domain.sla import (
    Announcement,
    AnnouncementKind,
    ClockEffect,
    SlaMarks,
    clock_effect,
    due_announcements,
    next_due_at,
    pending_announcements,
)
from triage_service.domain.taxonomy import Taxonomy, load_taxonomy
from triage_service.models import outbox, timers
from triage_service.repository import StoredTriage
from triage_service.schemas import (
    DeadlineView,
    QueueItem,
    RetrainReport,
    TriageQueue,
    TriageView,
)

PRODUCER = "triage_service"
SLA_TIMER = "triage.sla"
# Why the clocks stopped: the customer withdrew (a closed case stops them as `case_<state>`).
WITHDRAWN = "withdrawn"
# What caused a re-triage: an agent, or the complaint joining a group complaint.
MANUAL = "manual"
GROUP_COMPLAINT = "group_complaint"


# --- the classifier ------------------------------------------------------------------


@dataclass(frozen=True)
class TrainedClassifier:
    """The model this process classifies with, and what it was trained on."""

    model: TriageModel
    version: str
    base_examples: int
    corrections_used: int
    trained_at: datetime


_classifier: TrainedClassifier | None = None


def current_classifier() -> TrainedClassifier:
    """The model trained at start-up (or by the last retraining)."""
    if _classifier is None:
        raise RuntimeError("the classifier is trained at start-up: call train_classifier first")
    return _classifier


async def train_classifier(session: AsyncSession) -> TrainedClassifier:
    """Trains on the packaged examples plus agents' stored corrections, and starts using it.

    Each replica trains when it starts, and again when an admin asks it to: a replica picks
    up corrections made since it started only then.
    """
    global _classifier
    taxonomy = load_taxonomy()
    stored = await repository.corrections_for_training(session)
    corrections = [
        LabelledComplaint(
            Complaint(
                text=correction.description,
                target=correction.target,
                demands=tuple(correction.demands),
                channel=correction.channel,
            ),
            correction.subcategory,
        )
        for correction in stored
        # A tag the taxonomy dropped since the correction teaches nothing any more.
        if correction.subcategory in taxonomy.subcategory_codes
    ]
    base = _packaged_examples()
    # CPU-bound for about a second: off the event loop, so requests and events keep flowing.
    model = await asyncio.to_thread(retrain, base, corrections, taxonomy=taxonomy)
    _classifier = TrainedClassifier(
        model=model,
        version=_model_version(taxonomy, len(base), corrections),
        base_examples=len(base),
        corrections_used=len(corrections),
        trained_at=utcnow(),
    )
    return _classifier


async def retrain_classifier(session: AsyncSession) -> RetrainReport:
    """Trains the model again with every stored correction and reports what it used."""
    previous = _classifier.version if _classifier is not None else None
    trained = await train_classifier(session)
    return RetrainReport(
        model_version=trained.version,
        previous_version=previous,
        base_examples=trained.base_examples,
        corrections_used=trained.corrections_used,
        trained_at=trained.trained_at,
    )


_base_examples: list[LabelledComplaint] | None = None


def _packaged_examples() -> list[LabelledComplaint]:
    global _base_examples
    if _base_examples is None:
        _base_examples = packaged_examples()
    return _base_examples


def _model_version(
    taxonomy: Taxonomy, base_examples: int, corrections: Sequence[LabelledComplaint]
) -> str:
    """Names what the model learnt from: the same data always gives the same version."""
    digest = hashlib.sha256()
    for correction in corrections:
        digest.update(f"{correction.subcategory}\t{correction.complaint.text}\n".encode())
    return f"t{taxonomy.version}-b{base_examples}-c{len(corrections)}-{digest.hexdigest()[:10]}"


# --- triage of a received complaint -------------------------------------------------


async def triage_complaint(
    session: AsyncSession, event: EventEnvelope[ComplaintReceived], *, settings: Settings
) -> bool:
    """Classifies, prioritises and routes a complaint, starts its SLA clocks and emits
    complaint.triaged; links the group it completes. False if it was already triaged.
    """
    complaint = event.payload
    order = complaint.order
    skus = sorted({item.sku for item in order.items}) if order is not None else []
    # Complaints on one merchant or SKU are counted one at a time, so a group is always seen.
    await repository.lock_groups(session, group_keys=group_keys(complaint.merchant_id, skus))
    received_at = complaint.received_at
    counts = await repository.count_around(
        session,
        complaint_id=event.complaint_id,
        merchant_id=complaint.merchant_id,
        customer_id=complaint.customer_id,
        skus=skus,
        received_at=received_at,
        since=received_at - settings.group_window,
        until=received_at + settings.group_window,
        repeat_since=received_at - settings.repeat_lookback,
    )
    group = joined_group(counts.groups, threshold=settings.group_threshold)
    classifier = current_classifier()
    demands = tuple(demand.type for demand in complaint.demands)
    decision = decide(
        Complaint(
            text=complaint.description,
            target=complaint.target,
            demands=demands,
            channel=complaint.channel,
        ),
        model=classifier.model,
        demanded_amounts=[d.amount for d in complaint.demands if d.amount is not None],
        order_amount=order.amount if order is not None else None,
        similar_complaints=max((count.customers for count in counts.groups), default=1),
        previous_complaints=counts.previous_complaints,
        rules=settings.priority_rules(),
        min_confidence=settings.min_confidence,
    )
    deadlines = _deadlines(decision.priority, complaint.channel, received_at, (), settings)
    triaged_at = utcnow()
    reasons = list(decision.reasons)
    stored = await repository.insert_triage(
        session,
        {
            "complaint_id": event.complaint_id,
            "complaint_number": complaint.complaint_number,
            "merchant_id": complaint.merchant_id,
            "customer_id": complaint.customer_id,
            "category": decision.category,
            "subcategory": decision.subcategory,
            "priority": decision.priority.value,
            "team": decision.team,
            "provisional": True,
            "manual_review": decision.manual_review,
            "confidence": decision.confidence,
            "responsibility": decision.responsibility.value,
            "reason": "; ".join(reasons),
            "reasons": reasons,
            "signals": list(decision.prediction.signals),
            "classifier_version": classifier.version,
            "description": complaint.description,
            "target": complaint.target,
            "channel": complaint.channel,
            "demands": list(demands),
            "skus": skus,
            "group_key": group.key if group is not None else None,
            "received_at": received_at,
            "first_response_due_at": deadlines.first_response.due_at,
            "resolution_due_at": deadlines.resolution.due_at,
            "triaged_at": triaged_at,
            "correlation_id": event.correlation_id,
        },
    )
    if not stored:
        return False
    await _move_sla_timer(
        session,
        event.complaint_id,
        deadlines,
        SlaMarks(),
        paused=False,
        settings=settings,
        correlation_id=event.correlation_id,
    )
    await outbox.add(
        session,
        new_event(
            ComplaintTriaged(
                complaint_number=complaint.complaint_number,
                merchant_id=complaint.merchant_id,
                category=decision.category,
                subcategory=decision.subcategory,
                priority=decision.priority,
                team=decision.team,
                provisional=True,
                manual_review=decision.manual_review,
                confidence=decision.confidence,
                responsibility=decision.responsibility.value,
                reasons=reasons,
                group_key=group.key if group is not None else None,
                first_response_due_at=_required(deadlines.first_response.due_at),
                resolution_due_at=deadlines.resolution.due_at,
                triaged_at=triaged_at,
            ),
            producer=PRODUCER,
            complaint_id=event.complaint_id,
            correlation_id=event.correlation_id,
            causation=event,
        ),
    )
    if group is not None:
        await _link_group(session, group, event, settings=settings)
    return True


async def _link_group(
    session: AsyncSession,
    group: GroupCount,
    cause: EventEnvelope[ComplaintReceived],
    *,
    settings: Settings,
) -> None:
    """Raises the group's earlier members to urgent and links them, each with its reason."""
    received_at = cause.payload.received_at
    members = await repository.unlinked_group_members(
        session,
        group_key=group.key,
        complaint_id=cause.complaint_id,
        since=received_at - settings.group_window,
        until=received_at + settings.group_window,
    )
    reason = group_reason(group, threshold=settings.group_threshold, window=settings.group_window)
    for member_id in members:
        row = await repository.lock_triage(session, complaint_id=member_id, timer_kind=SLA_TIMER)
        if row is None or row.group_key is not None or row.stopped_at is not None:
            continue  # linked or stopped since it was listed
        current = _priority(row.priority)
        await _change_triage(
            session,
            row,
            TriageTags(
                category=row.category,
                subcategory=row.subcategory,
                priority=highest([current, Priority.URGENT]),
            ),
            team=row.team,
            cause=GROUP_COMPLAINT,
            reason=reason,
            summary=reason,
            by=PRODUCER,
            extra={"group_key": group.key},
            settings=settings,
            causation=cause,
        )


# --- manual re-triage ------------------------------------------------------------------


async def retriage(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    category: str | None,
    subcategory: str | None,
    priority: Priority | None,
    reason: str,
    principal: Principal,
    settings: Settings,
) -> TriageView:
    """Applies an agent's change, recomputes the deadlines and emits complaint.retriaged.

    The correction is stored for the classifier to learn from. A request that changes
    nothing is answered with the triage as it is and emits nothing, so a retry is harmless.
    """
    row = await repository.lock_triage(session, complaint_id=complaint_id, timer_kind=SLA_TIMER)
    missing = f"no triage for complaint {complaint_id}"
    if row is None:
        raise NotFoundError(missing)
    ensure_visible(principal, missing, merchant_id=row.merchant_id, team=row.team)
    if row.stopped_at is not None:
        raise ConflictError(
            f"complaint {complaint_id} is {row.stop_reason}: its triage no longer changes"
        )
    taxonomy = current_classifier().model.taxonomy
    current = TriageTags(row.category, row.subcategory, _priority(row.priority))
    try:
        wanted = apply_retriage(
            current,
            taxonomy=taxonomy,
            category=category,
            subcategory=subcategory,
            priority=priority,
        )
    except RetriageError as exc:
        raise UnprocessableError(str(exc)) from exc
    team = taxonomy.team_for(wanted.category)
    if wanted == current and team == row.team and not row.provisional:
        return await _view(session, row, settings=settings)
    now = utcnow()
    names_tag = category is not None or subcategory is not None
    await repository.insert_correction(
        session,
        {
            "id": uuid4(),
            "complaint_id": complaint_id,
            "description": row.description,
            "target": row.target,
            "channel": row.channel,
            "demands": row.demands,
            "previous_category": row.category,
            "previous_subcategory": row.subcategory,
            "previous_priority": row.priority,
            "category": wanted.category,
            "subcategory": wanted.subcategory,
            "priority": wanted.priority.value,
            "teaches_classifier": names_tag,
            "reason": reason,
            "corrected_by": principal.id,
            "corrected_at": now,
        },
    )
    changed = await _change_triage(
        session,
        row,
        wanted,
        team=team,
        cause=MANUAL,
        reason=reason,
        summary=f"retriaged by {principal.id}: {reason}",
        by=principal.id,
        extra={
            "provisional": False,
            # A person decided: the complaint leaves the manual-triage queue.
            "manual_review": False,
            "retriaged_at": now,
            "retriaged_by": principal.id,
            "retriage_reason": reason,
        },
        settings=settings,
        causation=None,
    )
    return await _view(session, changed, settings=settings)


async def _change_triage(
    session: AsyncSession,
    row: StoredTriage,
    wanted: TriageTags,
    *,
    team: str,
    cause: str,
    reason: str,
    summary: str,
    by: str,
    extra: dict[str, Any],
    settings: Settings,
    causation: EventEnvelope[Any] | None,
) -> StoredTriage:
    """Stores new tags on a locked triage, moves its SLA timer and emits complaint.retriaged."""
    pauses = _pauses(row)
    deadlines = _deadlines(wanted.priority, row.channel, row.received_at, pauses, settings)
    reasons = [*row.reasons, summary]
    values: dict[str, Any] = {
        "category": wanted.category,
        "subcategory": wanted.subcategory,
        "priority": wanted.priority.value,
        "team": team,
        "reasons": reasons,
        "reason": "; ".join(reasons),
        "first_response_due_at": deadlines.first_response.due_at,
        "resolution_due_at": deadlines.resolution.due_at,
        **extra,
    }
    await repository.update_triage(session, complaint_id=row.complaint_id, values=values)
    changed = replace(row, **values)
    await _move_sla_timer(
        session,
        row.complaint_id,
        deadlines,
        _marks(row),
        paused=_is_paused(pauses),
        settings=settings,
        correlation_id=row.correlation_id,
    )
    await outbox.add(
        session,
        new_event(
            ComplaintRetriaged(
                complaint_number=row.complaint_number,
                merchant_id=row.merchant_id,
                category=wanted.category,
                subcategory=wanted.subcategory,
                priority=wanted.priority,
                team=team,
                previous_category=row.category,
                previous_subcategory=row.subcategory,
                previous_priority=row.priority,
                previous_team=row.team,
                cause=cause,
                reason=reason,
                retriaged_by=by,
                group_key=changed.group_key,
                first_response_due_at=deadlines.first_response.due_at,
                resolution_due_at=deadlines.resolution.due_at,
                retriaged_at=utcnow(),
            ),
            producer=PRODUCER,
            complaint_id=row.complaint_id,
            correlation_id=row.correlation_id,
            causation=causation,
        ),
    )
    return changed


# --- clocks: pauses, stops, the SLA timer -----------------------------------------------


async def apply_case_state(
    session: AsyncSession,
    *,
    complaint_id: UUID,
    case_state: str,
    at: datetime,
    settings: Settings,
) -> None:
    """Pauses the clocks while the case waits on the customer, resumes them on any other
    state, and stops them when the case is completed or closed."""
    effect = clock_effect(case_state)
    if effect is ClockEffect.STOP:
        await stop_clocks(session, complaint_id=complaint_id, reason=f"case_{case_state}", at=at)
        return
    # Most case events leave the clocks as they are (the case stays in processing): a plain
    # read says so without locking. Pauses change only here, one event of a complaint at a
    # time, so the read cannot miss a pause in flight; a change is decided again under lock.
    seen = await repository.get_triage(session, complaint_id=complaint_id)
    if seen is None or seen.stopped_at is not None:
        return
    if (effect is ClockEffect.PAUSE) == _is_paused(_pauses(seen)):
        return  # already as the case says
    row = await repository.lock_triage(session, complaint_id=complaint_id, timer_kind=SLA_TIMER)
    if row is None or row.stopped_at is not None:
        return
    pauses = _pauses(row)
    paused = _is_paused(pauses)
    if (effect is ClockEffect.PAUSE) == paused:
        return  # changed meanwhile
    clock = SlaClock(budget=_ANY_BUDGET, started_at=row.received_at, pauses=tuple(pauses))
    # A state older than the clock's last change (events of two sources race) takes effect
    # now rather than rewriting the past.
    at = max(at, clock.last_change_at)
    clock = clock.pause(at) if effect is ClockEffect.PAUSE else clock.resume(at)
    deadlines = _deadlines(row.priority, row.channel, row.received_at, clock.pauses, settings)
    await repository.update_triage(
        session,
        complaint_id=complaint_id,
        values={
            "pauses": _stored_pauses(clock.pauses),
            "first_response_due_at": deadlines.first_response.due_at,
            "resolution_due_at": deadlines.resolution.due_at,
        },
    )
    await _move_sla_timer(
        session,
        complaint_id,
        deadlines,
        _marks(row),
        paused=clock.is_paused,
        settings=settings,
        correlation_id=row.correlation_id,
    )


async def record_first_response(
    session: AsyncSession, *, complaint_id: UUID, at: datetime, settings: Settings
) -> None:
    """Meets the first-response clock: an agent acted on the complaint's case at `at`.

    Only the first such action counts; warnings and breaches already announced stay.
    """
    row = await repository.lock_triage(session, complaint_id=complaint_id, timer_kind=SLA_TIMER)
    if row is None or row.stopped_at is not None or row.first_responded_at is not None:
        return
    await repository.update_triage(
        session, complaint_id=complaint_id, values={"first_responded_at": at}
    )
    pauses = _pauses(row)
    deadlines = _deadlines(row.priority, row.channel, row.received_at, pauses, settings)
    await _move_sla_timer(
        session,
        complaint_id,
        deadlines,
        replace(_marks(row), first_responded_at=at),
        paused=_is_paused(pauses),
        settings=settings,
        correlation_id=row.correlation_id,
    )


async def stop_clocks(
    session: AsyncSession, *, complaint_id: UUID, reason: str, at: datetime
) -> None:
    """Stops every clock of a complaint for good (withdrawn, or its case closed)."""
    row = await repository.lock_triage(session, complaint_id=complaint_id, timer_kind=SLA_TIMER)
    if row is None or row.stopped_at is not None:
        return
    await repository.update_triage(
        session, complaint_id=complaint_id, values={"stopped_at": at, "stop_reason": reason}
    )
    await cancel(session, timers, kind=SLA_TIMER, key=str(complaint_id))


async def fire_sla_timer(session: AsyncSession, timer: Timer, *, settings: Settings) -> None:
    """Announces what a complaint's SLA has due (warnings, breaches, escalations), once each,
    and moves the timer to the next announcement."""
    complaint_id = UUID(timer.key)
    row = await repository.lock_triage(session, complaint_id=complaint_id, timer_kind=SLA_TIMER)
    if row is None or row.stopped_at is not None:
        return  # a reminder for something that no longer runs: the state decides
    pauses = _pauses(row)
    paused = _is_paused(pauses)
    deadlines = _deadlines(row.priority, row.channel, row.received_at, pauses, settings)
    escalation = settings.escalation_policy()
    marks = _marks(row)
    now = utcnow()
    due = due_announcements(
        pending_announcements(deadlines, marks, paused=paused, escalation=escalation), now
    )
    for announcement in due:
        marks = marks.after(announcement)
    if due:
        await repository.update_triage(
            session,
            complaint_id=complaint_id,
            values={
                "first_response_warned_at": marks.first_response_warned_at,
                "first_response_breached_at": marks.first_response_breached_at,
                "resolution_warned_at": marks.resolution_warned_at,
                "resolution_breached_at": marks.resolution_breached_at,
                "escalation_level": marks.escalation_level,
            },
        )
    for announcement in due:
        await outbox.add(
            session,
            new_event(
                _announcement_event(row, announcement, marks, now),
                producer=PRODUCER,
                complaint_id=complaint_id,
                correlation_id=row.correlation_id,
            ),
        )
    following = next_due_at(
        pending_announcements(deadlines, marks, paused=paused, escalation=escalation)
    )
    if following is not None:
        await schedule_again(session, timers, timer, due_at=following)


def _announcement_event(
    row: StoredTriage, announcement: Announcement, marks: SlaMarks, now: datetime
) -> EventPayload:
    common: dict[str, Any] = {
        "complaint_number": row.complaint_number,
        "merchant_id": row.merchant_id,
        "team": row.team,
        "priority": row.priority,
    }
    if announcement.kind is AnnouncementKind.WARNING:
        return ComplaintSlaWarning(
            **common,
            clock=_required(announcement.clock),
            warn_at=announcement.at,
            due_at=_required(announcement.due_at),
            warned_at=now,
        )
    if announcement.kind is AnnouncementKind.BREACH:
        return ComplaintSlaBreached(
            **common,
            clock=_required(announcement.clock),
            due_at=announcement.at,
            breached_at=now,
        )
    breached = (
        "first_response"
        if marks.first_response_breached_at == marks.first_breach_at
        else "resolution"
    )
    return ComplaintEscalated(
        **common,
        level=announcement.level,
        escalated_to=_required(announcement.escalated_to),
        reason=(
            f"{breached} deadline {marks.first_breach_at:%Y-%m-%d %H:%M:%S} UTC passed: "
            f"step {announcement.level} of the escalation chain"
        ),
        escalated_at=now,
    )


async def _move_sla_timer(
    session: AsyncSession,
    complaint_id: UUID,
    deadlines: Deadlines,
    marks: SlaMarks,
    *,
    paused: bool,
    settings: Settings,
    correlation_id: str | None = None,
) -> None:
    """Points the complaint's SLA timer at its next announcement, or cancels it."""
    pending = pending_announcements(
        deadlines, marks, paused=paused, escalation=settings.escalation_policy()
    )
    due_at = next_due_at(pending)
    key = str(complaint_id)
    if due_at is None:
        await cancel(session, timers, kind=SLA_TIMER, key=key)
        return
    payload = {"complaint_id": key, "correlation_id": correlation_id}
    await schedule(session, timers, kind=SLA_TIMER, key=key, due_at=due_at, payload=payload)


# --- customer erasure -------------------------------------------------------------------


async def erase_customer(session: AsyncSession, event: EventEnvelope[CustomerErased]) -> None:
    """Replaces the erased customer's id on this complaint's triage with a pseudonym, for good.

    Triage also keeps the customer's own words (the description the classifier read, and in
    agents' corrections): they are removed. Its reasons and signals name only words of the
    signal lexicon, the taxonomy and the training vocabulary, never new words of the
    customer's. The erasure row makes a later or replayed complaint.received store the
    pseudonym and no description.
    """
    erasure = event.payload
    pseudonym = customer_pseudonym(erasure.customer_id)
    await repository.insert_erasure(
        session,
        {
            "complaint_id": event.complaint_id,
            "customer_pseudonym": pseudonym,
            "erased_at": erasure.erased_at,
            "recorded_at": utcnow(),
        },
    )
    await repository.pseudonymise_customer(
        session, complaint_id=event.complaint_id, customer_pseudonym=pseudonym
    )
    await repository.erase_customer_words(session, complaint_id=event.complaint_id)


# --- reads ---------------------------------------------------------------------------------


async def get_triage(
    session: AsyncSession, *, complaint_id: UUID, principal: Principal, settings: Settings
) -> TriageView:
    """Gets triage's view of a complaint, with its reasons and clocks, if the caller's scope
    covers it."""
    row = await repository.get_triage(session, complaint_id=complaint_id)
    missing = f"no triage for complaint {complaint_id}"
    if row is None:
        raise NotFoundError(missing)
    ensure_visible(principal, missing, merchant_id=row.merchant_id, team=row.team)
    return await _view(session, row, settings=settings)


async def team_queue(
    session: AsyncSession, *, team: str, principal: Principal, limit: int, settings: Settings
) -> TriageQueue:
    """A team's open complaints, soonest first-response deadline first, with their state."""
    missing = f"no queue for team {team}"
    if team not in load_taxonomy().teams:
        raise NotFoundError(missing)
    ensure_visible(principal, missing, team=team)
    rows = await repository.team_queue(session, team=team, limit=limit)
    return _queue(team, rows, settings=settings)


async def manual_triage_queue(
    session: AsyncSession, *, principal: Principal, limit: int, settings: Settings
) -> TriageQueue:
    """Complaints the classifier was unsure of, waiting for a person (intake review's)."""
    team = load_taxonomy().fallback_team
    ensure_visible(principal, f"no queue for team {team}", team=team)
    rows = await repository.manual_triage_queue(session, limit=limit)
    return _queue(team, rows, settings=settings)


def _queue(team: str, rows: Sequence[StoredTriage], *, settings: Settings) -> TriageQueue:
    now = utcnow()
    items = []
    for row in rows:
        deadlines = _stored_deadlines(row, settings)
        items.append(
            QueueItem(
                complaint_id=row.complaint_id,
                complaint_number=row.complaint_number,
                merchant_id=row.merchant_id,
                category=row.category,
                subcategory=row.subcategory,
                priority=row.priority,
                team=row.team,
                manual_review=row.manual_review,
                confidence=row.confidence,
                received_at=row.received_at,
                due_at=deadlines.first_response.due_at,
                state=deadlines.first_response.state(now),
                resolution_due_at=deadlines.resolution.due_at,
                resolution_state=deadlines.resolution.state(now),
                escalation_level=row.escalation_level,
                group_key=row.group_key,
            )
        )
    return TriageQueue(team=team, as_of=now, items=items)


async def _view(session: AsyncSession, row: StoredTriage, *, settings: Settings) -> TriageView:
    now = utcnow()
    deadlines = _stored_deadlines(row, settings)
    linked = (
        [
            member
            for member in await repository.group_members(session, group_key=row.group_key)
            if member != row.complaint_id
        ]
        if row.group_key is not None
        else []
    )
    chain = settings.escalation_policy().chain
    return TriageView(
        complaint_id=row.complaint_id,
        complaint_number=row.complaint_number,
        merchant_id=row.merchant_id,
        category=row.category,
        subcategory=row.subcategory,
        priority=row.priority,
        team=row.team,
        provisional=row.provisional,
        manual_review=row.manual_review,
        confidence=row.confidence,
        responsibility=row.responsibility,
        reason=row.reason,
        reasons=row.reasons,
        signals=row.signals,
        classifier_version=row.classifier_version,
        group_key=row.group_key,
        linked_complaints=linked,
        received_at=row.received_at,
        triaged_at=row.triaged_at,
        first_response_due_at=deadlines.first_response.due_at,
        resolution_due_at=deadlines.resolution.due_at,
        first_response=_deadline_view(
            deadlines.first_response,
            now,
            row.first_response_warned_at,
            row.first_response_breached_at,
        ),
        resolution=_deadline_view(
            deadlines.resolution, now, row.resolution_warned_at, row.resolution_breached_at
        ),
        paused=_is_paused(_pauses(row)),
        escalation_level=row.escalation_level,
        # A chain shortened since the complaint climbed it names its last step.
        escalated_to=chain[min(row.escalation_level, len(chain)) - 1]
        if row.escalation_level
        else None,
        stopped_at=row.stopped_at,
        stop_reason=row.stop_reason,
        retriaged_at=row.retriaged_at,
        retriaged_by=row.retriaged_by,
        retriage_reason=row.retriage_reason,
    )


def _deadline_view(
    deadline: Deadline, now: datetime, warned_at: datetime | None, breached_at: datetime | None
) -> DeadlineView:
    return DeadlineView(
        due_at=deadline.due_at,
        warn_at=deadline.warn_at,
        state=deadline.state(now),
        warned_at=warned_at,
        breached_at=breached_at,
    )


# --- helpers -----------------------------------------------------------------------------

# Pauses are checked and moved with an SlaClock; its budget plays no part in that.
_ANY_BUDGET = timedelta(seconds=1)
T = TypeVar("T")


def _priority(value: str) -> Priority:
    # A priority this version does not know is worked as general (open vocabulary).
    return known(Priority, value) or Priority.GENERAL


def _deadlines(
    priority: str,
    channel: str | None,
    received_at: datetime,
    pauses: Sequence[Pause],
    settings: Settings,
) -> Deadlines:
    return compute_deadlines(
        priority=priority,
        channel=channel,
        received_at=received_at,
        calendar=settings.calendar(),
        pauses=pauses,
        policy=settings.deadline_policy(),
    )


def _stored_deadlines(row: StoredTriage, settings: Settings) -> Deadlines:
    return _deadlines(row.priority, row.channel, row.received_at, _pauses(row), settings)


def _pauses(row: StoredTriage) -> list[Pause]:
    return [
        (
            datetime.fromisoformat(str(paused_at)),
            datetime.fromisoformat(resumed_at) if resumed_at is not None else None,
        )
        for paused_at, resumed_at in row.pauses
    ]


def _stored_pauses(pauses: Sequence[Pause]) -> list[list[str | None]]:
    return [
        [paused_at.isoformat(), resumed_at.isoformat() if resumed_at is not None else None]
        for paused_at, resumed_at in pauses
    ]


def _is_paused(pauses: Sequence[Pause]) -> bool:
    return bool(pauses) and pauses[-1][1] is None


def _marks(row: StoredTriage) -> SlaMarks:
    return SlaMarks(
        first_response_warned_at=row.first_response_warned_at,
        first_response_breached_at=row.first_response_breached_at,
        resolution_warned_at=row.resolution_warned_at,
        resolution_breached_at=row.resolution_breached_at,
        escalation_level=row.escalation_level,
        first_responded_at=row.first_responded_at,
    )


def _required(value: T | None) -> T:
    if value is None:
        raise ValueError("a value the rules always set is missing")
    return value
