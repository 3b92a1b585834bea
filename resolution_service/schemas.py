"""HTTP models of the resolution API."""

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from resolution_service.domain.ledger import Responsibility
from resolution_service.domain.negotiation import ReferralBody
from resolution_service.domain.policy import Concession
from resolution_service.domain.remedies import RemedyKind
from resolution_service.domain.verification import Stance
from shared.text import FreeText, SingleLine


class CaseView(BaseModel):
    """Resolution's view of a complaint: its case."""

    case_id: UUID
    complaint_id: UUID
    complaint_number: str
    merchant_id: str
    # Open values (shared.events.vocabulary lists the known ones): shown as stored.
    category: str
    priority: str
    team: str
    # The customer-visible state, and the lifecycle's own.
    status: str
    state: str
    subcategory: str | None = None
    assignee_id: str | None = None
    responsibility_hypothesis: str | None = None
    responsibility: str | None = None
    responsibility_reasons: list[str] = Field(default_factory=list)
    verification_due_at: datetime | None = None
    verification: dict[str, Any] | None = None
    proposal: dict[str, Any] | None = None
    negotiation_rounds: int = 0
    mediation_held: bool = False
    referral: dict[str, Any] | None = None
    decided_at: datetime | None = None
    auto_close_at: datetime | None = None
    appeal_window_ends_at: datetime | None = None
    reviewer_id: str | None = None
    first_response_due_at: datetime
    opened_at: datetime
    updated_at: datetime


class TimelineLine(BaseModel):
    """One line of a case's timeline: who did what, when, from which service."""

    at: datetime
    actor: str
    service: str
    kind: str
    source: str | None = None
    note: str | None = None
    evidence_refs: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)


class TaskView(BaseModel):
    """An execution task of the accepted remedies."""

    key: str
    kind: str
    state: str
    performer: str
    due_at: datetime | None = None
    after: str | None = None
    failure_reason: str | None = None


class ConsentView(BaseModel):
    """The stored proof of consent (the customer is named only by the storefront's id)."""

    consented_at: datetime
    channel: str
    offer_hash: str
    summary: list[str]


class CaseDetail(CaseView):
    """The case for the people working it: its timeline, tasks and what may happen next."""

    timeline: list[TimelineLine]
    tasks: list[TaskView]
    consent: ConsentView | None = None
    allowed_triggers: list[str]


class Queue(BaseModel):
    """Active cases of a team or an agent, most urgent first."""

    team: str | None = None
    assignee_id: str | None = None
    items: list[CaseView]


class Assignment(BaseModel):
    """Assign to a named agent of the case's team, or (no name) to the least loaded."""

    username: SingleLine | None = Field(default=None, max_length=200)


class Note(BaseModel):
    """A note or evidence for the investigation; `source` is whose words (default: yours)."""

    source: Literal["customer", "merchant", "carrier", "agent"] | None = None
    note: FreeText = Field(min_length=1, max_length=4000)
    evidence_refs: list[SingleLine] = Field(default_factory=list, max_length=20)


class VerificationRequestBody(BaseModel):
    """What the merchant is asked to verify."""

    questions: list[FreeText] = Field(default_factory=list, max_length=20)


class VerificationAnswer(BaseModel):
    """The merchant's answer: accept, or dispute with evidence."""

    stance: Stance
    statement: FreeText = Field(default="", max_length=4000)
    evidence_refs: list[SingleLine] = Field(default_factory=list, max_length=50)


class FindingBody(BaseModel):
    """The agent's finding on responsibility, with its reason."""

    responsibility: Responsibility
    reason: FreeText = Field(min_length=1, max_length=2000)


class GoodwillBody(BaseModel):
    """A gesture beyond the policy's standard (needs approval above the agent's ceiling)."""

    kind: RemedyKind
    reason: FreeText = Field(min_length=1, max_length=2000)
    amount: Decimal = Field(default=Decimal(0), ge=0, max_digits=12, decimal_places=2)
    valid_days: int = Field(default=30, ge=1, le=3650)


class ProposalRequest(BaseModel):
    """Propose the policy's remedies: with the agent's finding and any goodwill."""

    finding: FindingBody | None = None
    goodwill: list[GoodwillBody] = Field(default_factory=list, max_length=5)
    # The carrier a logistics responsibility charges in the ledger.
    carrier_id: SingleLine | None = Field(default=None, max_length=100)


class ApprovalDecision(BaseModel):
    """A supervisor's decision on a proposal; a rejection states its reason."""

    approve: bool
    reason: FreeText | None = Field(default=None, max_length=2000)


class CustomerDecision(BaseModel):
    """The customer's answer to the offer, through the storefront."""

    accept: bool
    # The offer the customer saw (offer_hash of the case): a changed offer is refused.
    offer_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    demanded_compensation: Decimal | None = Field(
        default=None, ge=0, max_digits=12, decimal_places=2
    )
    channel: SingleLine = Field(default="app", max_length=50)


class CounterOffer(BaseModel):
    """A counter-offer; without an amount the policy's next step is offered."""

    compensation: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)


class MediationOffer(BaseModel):
    """The mediating supervisor's offer: compensation and the policy's concessions."""

    compensation: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)
    concessions: list[Concession] = Field(default_factory=list, max_length=5)


class Referral(BaseModel):
    """The outside body a dispute goes to."""

    body: ReferralBody


class ExternalOutcomeBody(BaseModel):
    """What the outside body decided."""

    outcome: Literal["settled", "dismissed"]
    summary: FreeText = Field(min_length=1, max_length=2000)


class TaskReport(BaseModel):
    """Progress on a task: start, record facts, receive_return, inspect, issue_coupon,
    complete, fail (with a reason) or retry."""

    action: Literal[
        "start", "record", "receive_return", "inspect", "issue_coupon", "complete", "fail", "retry"
    ]
    facts: dict[str, str] = Field(default_factory=dict, max_length=10)


class AppealBody(BaseModel):
    """The customer's appeal and its reason."""

    reason: FreeText = Field(min_length=1, max_length=2000)


class ReviewDecision(BaseModel):
    """The review's decision: uphold or reopen, with its reason."""

    outcome: Literal["upheld", "reopened"]
    reason: FreeText = Field(min_length=1, max_length=2000)


class LedgerTotal(BaseModel):
    """What one party owes in one currency."""

    currency: str
    total: Decimal
    entries: int


class LedgerTotals(BaseModel):
    """The liability ledger's totals for a merchant or a carrier."""

    party: str
    party_id: str
    totals: list[LedgerTotal]
