"""Resolution rules: opening a case for a triaged complaint. Never commits."""

import uuid
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from resolution_service import repository
from resolution_service.models import outbox
from resolution_service.schemas import CaseView
from shared.auth import Principal, ensure_visible
from shared.errors import NotFoundError
from shared.events import CaseOpened, ComplaintTriaged, EventEnvelope, new_event
from shared.events.vocabulary import CaseStatus, Priority, known
from shared.time import utcnow

PRODUCER = "resolution_service"


def case_priority(priority: str) -> Priority:
    """The priority a case works to; one this service does not know yet counts as general."""
    return known(Priority, priority) or Priority.GENERAL


async def open_case(session: AsyncSession, event: EventEnvelope[ComplaintTriaged]) -> bool:
    """Opens a case (处理中) and emits case.opened; a re-triage updates the existing case."""
    triage = event.payload
    priority = case_priority(triage.priority)
    now = utcnow()
    case_id = uuid.uuid4()
    opened = await repository.insert_case(
        session,
        {
            "id": case_id,
            "complaint_id": event.complaint_id,
            "complaint_number": triage.complaint_number,
            "merchant_id": triage.merchant_id,
            # Kept as triage said it, known or not (the view falls back when showing it).
            "category": triage.category,
            "priority": priority.value,
            "team": triage.team,
            "status": CaseStatus.PROCESSING.value,
            "first_response_due_at": triage.first_response_due_at,
            "opened_at": now,
            "updated_at": now,
            "correlation_id": event.correlation_id,
        },
    )
    if not opened:
        await repository.update_case_triage(
            session,
            complaint_id=event.complaint_id,
            values={
                "category": triage.category,
                "priority": priority.value,
                "team": triage.team,
                "first_response_due_at": triage.first_response_due_at,
                "updated_at": now,
            },
        )
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
                first_response_due_at=triage.first_response_due_at,
                opened_at=now,
            ),
            producer=PRODUCER,
            complaint_id=event.complaint_id,
            correlation_id=event.correlation_id,
            causation=event,
        ),
    )
    return True


async def get_case(session: AsyncSession, *, complaint_id: UUID, principal: Principal) -> CaseView:
    """Gets the case of a complaint, if the caller's scope covers it."""
    row = await repository.get_case_by_complaint(session, complaint_id=complaint_id)
    missing = f"no case for complaint {complaint_id}"
    if row is None:
        raise NotFoundError(missing)
    ensure_visible(principal, missing, merchant_id=row.merchant_id, team=row.team)
    values = dict(row._mapping)
    return CaseView(case_id=values.pop("id"), **values)
