"""Triage rules: a provisional classification, priority and deadline. Never commits."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal, ensure_visible
from shared.errors import NotFoundError
from shared.events import (
    ComplaintReceived,
    ComplaintTriaged,
    CustomerErased,
    EventEnvelope,
    new_event,
)
from shared.events.vocabulary import Category, ComplaintTarget, Priority, known
from shared.pii import customer_pseudonym
from shared.time import utcnow
from triage_service import repository
from triage_service.config import Settings
from triage_service.models import outbox
from triage_service.schemas import TriageView

PRODUCER = "triage_service"

# Without a hint, what the complaint is about gives a first category.
CATEGORY_BY_TARGET: dict[str, Category] = {
    ComplaintTarget.PRODUCT: Category.PRODUCT_QUALITY,
    ComplaintTarget.LOGISTICS: Category.LOGISTICS,
    ComplaintTarget.SERVICE: Category.AFTER_SALES,
    ComplaintTarget.STAFF: Category.SERVICE_ATTITUDE,
    ComplaintTarget.MERCHANT: Category.TRANSACTION_DISPUTE,
    ComplaintTarget.FACILITY: Category.FACILITIES,
}

# Each category is owned by one team (logistics group, merchant management, CS quality...).
TEAM_BY_CATEGORY: dict[str, str] = {
    Category.PRODUCT_QUALITY: "merchant_management",
    Category.LOGISTICS: "logistics",
    Category.AFTER_SALES: "cs_quality",
    Category.SERVICE_ATTITUDE: "cs_quality",
    Category.SYSTEM_FAILURE: "platform_engineering",
    Category.TRANSACTION_DISPUTE: "merchant_management",
    Category.MISLEADING_INFO: "merchant_management",
    Category.FACILITIES: "mall_operations",
    Category.SAFETY: "safety_response",
    Category.OTHER: "intake_review",
}
# A category this triage does not know yet goes to the people who sort the unclassified.
FALLBACK_TEAM = TEAM_BY_CATEGORY[Category.OTHER]


@dataclass(frozen=True)
class Classification:
    """A provisional category, priority and the reason for them."""

    category: Category
    priority: Priority
    reason: str


def team_for(category: str) -> str:
    """The team that owns a category; one this triage does not know goes to intake review."""
    return TEAM_BY_CATEGORY.get(category, FALLBACK_TEAM)


def classify(complaint: ComplaintReceived, *, settings: Settings) -> Classification:
    """First-pass classification from the complaint's own fields (confirmed later by agents)."""
    # Intake may know words this triage does not yet: a hint or target it does not know
    # leaves the complaint unclassified, for people in intake review to sort.
    hinted = known(Category, complaint.category_hint)
    if complaint.category_hint is None:
        category = CATEGORY_BY_TARGET.get(complaint.target, Category.OTHER)
        reasons = [f"category from target {complaint.target}"]
    elif hinted is not None:
        category = hinted
        reasons = ["category from hint"]
    else:
        category = Category.OTHER
        reasons = [f"unknown category hint {complaint.category_hint}"]
    priority = Priority.GENERAL
    if category is Category.SAFETY:
        priority = Priority.URGENT
        reasons.append("personal safety")
    largest = max((d.amount for d in complaint.demands if d.amount is not None), default=None)
    if largest is not None and largest >= settings.large_sum_threshold:
        priority = Priority.URGENT
        reasons.append(f"large sum {largest}")
    return Classification(category=category, priority=priority, reason="; ".join(reasons))


async def triage_complaint(
    session: AsyncSession, event: EventEnvelope[ComplaintReceived], *, settings: Settings
) -> bool:
    """Records a provisional triage and emits complaint.triaged; False if already triaged."""
    complaint = event.payload
    decision = classify(complaint, settings=settings)
    due_at = complaint.received_at + timedelta(
        hours=settings.first_response_hours[decision.priority]
    )
    triaged_at = utcnow()
    team = team_for(decision.category)
    stored = await repository.insert_triage(
        session,
        {
            "complaint_id": event.complaint_id,
            "complaint_number": complaint.complaint_number,
            "merchant_id": complaint.merchant_id,
            "customer_id": complaint.customer_id,
            "category": decision.category.value,
            "priority": decision.priority.value,
            "team": team,
            "provisional": True,
            "reason": decision.reason,
            "received_at": complaint.received_at,
            "first_response_due_at": due_at,
            "triaged_at": triaged_at,
            "correlation_id": event.correlation_id,
        },
    )
    if not stored:
        return False
    await outbox.add(
        session,
        new_event(
            ComplaintTriaged(
                complaint_number=complaint.complaint_number,
                merchant_id=complaint.merchant_id,
                category=decision.category,
                priority=decision.priority,
                team=team,
                provisional=True,
                first_response_due_at=due_at,
                triaged_at=triaged_at,
            ),
            producer=PRODUCER,
            complaint_id=event.complaint_id,
            correlation_id=event.correlation_id,
            causation=event,
        ),
    )
    return True


async def erase_customer(session: AsyncSession, event: EventEnvelope[CustomerErased]) -> None:
    """Replaces the erased customer's id on this complaint's triage with a pseudonym, for good.

    The customer id is all triage holds about the customer: its reason is built from the
    category, target and amounts, never from the customer's own words. The erasure row makes
    a later or replayed complaint.received store the pseudonym too.
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


async def get_triage(
    session: AsyncSession, *, complaint_id: UUID, principal: Principal
) -> TriageView:
    """Gets triage's view of a complaint, if the caller's scope covers it."""
    row = await repository.get_triage(session, complaint_id=complaint_id)
    missing = f"no triage for complaint {complaint_id}"
    if row is None:
        raise NotFoundError(missing)
    ensure_visible(principal, missing, merchant_id=row.merchant_id, team=row.team)
    values: dict[str, Any] = dict(row._mapping)
    return TriageView(**values)
