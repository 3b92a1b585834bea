"""Payload classes of every event, grouped by topic. Additive, optional changes only.

Words that grow with the business (channels, categories, demand types, priorities, states)
travel as open codes: any lower_snake_case word is valid, the known ones are documented in the
schema, and a reader that meets one it does not know falls back or ignores it.
"""

from decimal import Decimal
from typing import ClassVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.events.envelope import EventPayload
from shared.events.topics import Topic
from shared.events.vocabulary import (
    AfterSalesReasonCode,
    CaseStatusCode,
    CategoryCode,
    ChannelCode,
    ComplaintTargetCode,
    ContactChannelCode,
    DemandTypeCode,
    OpenCode,
    PriorityCode,
)
from shared.text import FreeText, SingleLine


class Demand(BaseModel):
    """One thing the customer asks for, with an amount where stated."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: DemandTypeCode
    amount: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")


class ProductRef(BaseModel):
    """The product a complaint is about."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: SingleLine = Field(min_length=1, max_length=200)
    spec: SingleLine | None = Field(default=None, max_length=200)
    quantity: int = Field(default=1, ge=1, le=100_000)


class OrderItem(BaseModel):
    """One line of the order the complaint is about."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sku: SingleLine = Field(min_length=1, max_length=64)
    name: SingleLine = Field(min_length=1, max_length=200)
    spec: SingleLine | None = Field(default=None, max_length=200)
    quantity: int = Field(default=1, ge=1, le=100_000)
    unit_price: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)
    # False for goods the law lets a shop exclude from 7-day no-reason returns (custom-made,
    # fresh food, digital downloads, opened software...): the storefront knows each item's.
    returnable_without_reason: bool = True


class OrderRef(BaseModel):
    """The order a complaint is about, as the storefront knows it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    number: SingleLine = Field(min_length=1, max_length=64)
    placed_at: AwareDatetime | None = None
    delivered_at: AwareDatetime | None = None
    amount: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    items: list[OrderItem] = Field(default_factory=list, max_length=100)


class MissingItem(BaseModel):
    """One piece of information a complaint still needs, and why."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # A dotted path in the complaint request, e.g. "order.delivered_at" or "evidence".
    field: str = Field(min_length=1, max_length=100)
    reason: FreeText = Field(max_length=500)


class EvidenceRef(BaseModel):
    """A file the customer attached (photo, video, receipt...): intake keeps the content."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: UUID
    # photo, video, screenshot, receipt, chat_log...
    kind: OpenCode
    media_type: str = Field(max_length=100, examples=["image/jpeg", "video/mp4"])
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=1)


# --- intake.complaint.v1 -------------------------------------------------------------


class ComplaintReceived(EventPayload):
    """A complaint was accepted and numbered (受理). Contact data travels sealed."""

    event_type: ClassVar[str] = "complaint.received"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.INTAKE_COMPLAINT

    complaint_number: str
    customer_id: str
    # AES-GCM sealed CustomerContact: only intake and notification hold the key.
    sealed_contact: str
    preferred_contact_channel: ContactChannelCode
    order_number: str | None = None
    merchant_id: str
    channel: ChannelCode
    target: ComplaintTargetCode
    category_hint: CategoryCode | None = None
    description: FreeText
    demands: list[Demand] = Field(default_factory=list)
    product: ProductRef | None = None
    delivered_at: AwareDatetime | None = None
    received_at: AwareDatetime
    # The storefront that posted it (its API key's storefront); absent from older producers.
    storefront_id: str | None = None
    # Fields below are absent from older producers.
    order: OrderRef | None = None
    occurred_at: AwareDatetime | None = None
    after_sales_reason: AfterSalesReasonCode | None = None
    # Account flags intake holds for the customer (e.g. "abuse_suspected"): resolution asks a
    # supervisor to approve any remedy for a flagged account.
    customer_flags: list[OpenCode] = Field(default_factory=list)
    # The customer's evidence files attached to the complaint (their content stays in intake).
    evidence: list[EvidenceRef] = Field(default_factory=list)


class ComplaintInfoRequested(EventPayload):
    """A numbered complaint lacks information: the customer is asked for all of it at once."""

    event_type: ClassVar[str] = "complaint.info_requested"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.INTAKE_COMPLAINT

    complaint_number: str
    customer_id: str
    merchant_id: str
    channel: ChannelCode
    sealed_contact: str
    preferred_contact_channel: ContactChannelCode
    missing: list[MissingItem] = Field(min_length=1)
    # By when the customer should answer; the complaint waits until then.
    respond_by: AwareDatetime
    requested_at: AwareDatetime


class ComplaintInfoSupplied(EventPayload):
    """The customer supplied missing information; `still_missing` empty means it proceeds."""

    event_type: ClassVar[str] = "complaint.info_supplied"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.INTAKE_COMPLAINT

    complaint_number: str
    customer_id: str
    supplied: list[str] = Field(default_factory=list)
    still_missing: list[MissingItem] = Field(default_factory=list)
    supplied_at: AwareDatetime


class ComplaintRejected(EventPayload):
    """A complaint was recorded but not taken on: outside the after-sales window or scope."""

    event_type: ClassVar[str] = "complaint.rejected"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.INTAKE_COMPLAINT

    complaint_number: str
    customer_id: str
    merchant_id: str
    channel: ChannelCode
    sealed_contact: str
    preferred_contact_channel: ContactChannelCode
    # after_sales_window_expired, out_of_scope, ... (open vocabulary).
    reason_code: OpenCode
    reason: FreeText = Field(max_length=2000)
    # Where the customer can still turn, e.g. the manufacturer's warranty service or 12315.
    alternative: FreeText = Field(max_length=2000)
    rejected_at: AwareDatetime


class ComplaintWithdrawn(EventPayload):
    """The customer withdrew the complaint: every service stops working on it."""

    event_type: ClassVar[str] = "complaint.withdrawn"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.INTAKE_COMPLAINT

    complaint_number: str
    customer_id: str
    merchant_id: str
    reason: FreeText | None = Field(default=None, max_length=2000)
    withdrawn_at: AwareDatetime


class ComplaintLinkedDuplicate(EventPayload):
    """A new submission repeated an open complaint (same customer, order, target): linked to it.

    The envelope's complaint_id is the existing complaint's; no second case is opened.
    """

    event_type: ClassVar[str] = "complaint.linked_duplicate"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.INTAKE_COMPLAINT

    complaint_number: str
    customer_id: str
    merchant_id: str
    order_number: str | None = None
    target: ComplaintTargetCode
    # The repeated submission's own words, added to the existing complaint's record.
    description: FreeText
    submitted_at: AwareDatetime


class CustomerErased(EventPayload):
    """A customer's personal data was erased from this complaint: every service does the same.

    One event per complaint of the customer, on the complaint's partition, so it is applied
    after everything earlier about that complaint.
    """

    event_type: ClassVar[str] = "customer.erased"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.INTAKE_COMPLAINT

    complaint_number: str
    customer_id: str
    erased_at: AwareDatetime


# --- triage.complaint.v1 -------------------------------------------------------------


class ComplaintTriaged(EventPayload):
    """A complaint got its category, priority, owning team and first-response deadline."""

    event_type: ClassVar[str] = "complaint.triaged"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.TRIAGE_COMPLAINT

    complaint_number: str
    merchant_id: str
    category: CategoryCode
    priority: PriorityCode
    team: str
    provisional: bool
    first_response_due_at: AwareDatetime
    triaged_at: AwareDatetime
    # Fields below are absent from older producers.
    # The level-2 tag of triage's taxonomy (level-2 codes are unique across it).
    subcategory: OpenCode | None = None
    # The classifier's calibrated probability for the subcategory.
    confidence: float | None = Field(default=None, ge=0, le=1)
    # Below the confidence bar: routed to intake review for a person to classify.
    manual_review: bool = False
    # Who presumably answers for it until investigation: merchant, logistics, customer...
    responsibility: OpenCode | None = None
    # Why: the classifier's deciding features, every priority rule that fired, responsibility.
    reasons: list[FreeText] = Field(default_factory=list, max_length=50)
    resolution_due_at: AwareDatetime | None = None
    # Set when the complaint is one of a group (K complaints on one merchant or SKU).
    group_key: SingleLine | None = Field(default=None, max_length=200)


class ComplaintRetriaged(EventPayload):
    """A complaint's triage changed: by an agent, or raised because it joined a group complaint.

    The deadlines are recomputed from the complaint's receipt with the new priority; they are
    absent while the SLA clocks are paused (no deadline runs then).
    """

    event_type: ClassVar[str] = "complaint.retriaged"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.TRIAGE_COMPLAINT

    complaint_number: str
    merchant_id: str
    category: CategoryCode
    subcategory: OpenCode | None = None
    priority: PriorityCode
    team: str
    previous_category: CategoryCode
    previous_subcategory: OpenCode | None = None
    previous_priority: PriorityCode
    previous_team: str
    # manual (an agent's decision) or group_complaint (triage linked it to a group).
    cause: OpenCode
    reason: FreeText = Field(max_length=2000)
    # The caller's id (`agent:alice`) for a manual re-triage; `triage_service` otherwise.
    retriaged_by: SingleLine = Field(max_length=200)
    group_key: SingleLine | None = Field(default=None, max_length=200)
    first_response_due_at: AwareDatetime | None = None
    resolution_due_at: AwareDatetime | None = None
    retriaged_at: AwareDatetime


class ComplaintSlaWarning(EventPayload):
    """An SLA clock has used its warning share (80% by default) of its budget."""

    event_type: ClassVar[str] = "complaint.sla_warning"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.TRIAGE_COMPLAINT

    complaint_number: str
    merchant_id: str
    team: str
    priority: PriorityCode
    # first_response or resolution.
    clock: OpenCode
    warn_at: AwareDatetime
    due_at: AwareDatetime
    warned_at: AwareDatetime


class ComplaintSlaBreached(EventPayload):
    """An SLA clock ran out: the deadline passed without the clock being stopped or paused."""

    event_type: ClassVar[str] = "complaint.sla_breached"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.TRIAGE_COMPLAINT

    complaint_number: str
    merchant_id: str
    team: str
    priority: PriorityCode
    # first_response or resolution.
    clock: OpenCode
    due_at: AwareDatetime
    breached_at: AwareDatetime


class ComplaintEscalated(EventPayload):
    """A breached complaint moved one step up the escalation chain (agent, supervisor, head)."""

    event_type: ClassVar[str] = "complaint.escalated"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.TRIAGE_COMPLAINT

    complaint_number: str
    merchant_id: str
    team: str
    priority: PriorityCode
    # 1 for the first step of the chain, then 2, 3...
    level: int = Field(ge=1)
    # Who now answers for it: agent, supervisor, head (open vocabulary).
    escalated_to: OpenCode
    reason: FreeText = Field(max_length=2000)
    escalated_at: AwareDatetime


# --- resolution.case.v1 (merchant systems consume it: no customer contact data) -----


class CaseOpened(EventPayload):
    """A resolution case was opened for a triaged complaint."""

    event_type: ClassVar[str] = "case.opened"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.RESOLUTION_CASE

    case_id: UUID
    complaint_number: str
    merchant_id: str
    priority: PriorityCode
    status: CaseStatusCode
    first_response_due_at: AwareDatetime
    opened_at: AwareDatetime
    # Fields below are absent from older producers.
    # The lifecycle's internal state (open) and its customer-visible state, as every case
    # event carries them.
    state: OpenCode | None = None
    customer_visible_state: CaseStatusCode | None = None
    team: str | None = None


class RemedyLine(BaseModel):
    """One remedy of an offer as merchants and notification read it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # refund, return_and_refund, exchange, repair, reship, coupon, balance_credit, apology...
    kind: OpenCode
    amount: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    # merchant, carrier, platform or customer: who bears its cost.
    paid_by: OpenCode | None = None
    description: FreeText = Field(max_length=1000)


class CaseChange(EventPayload):
    """What every event of a case's lifecycle carries after case.opened (not an event itself).

    One shape for all of them: the case, its merchant, the state it is now in (internal and
    customer-visible), who moved it and why, plus the facts of the step that apply (the
    verification's deadline, the offer, the task...). Never the customer's contact or words.
    """

    topic: ClassVar[Topic] = Topic.RESOLUTION_CASE

    case_id: UUID
    complaint_number: str
    merchant_id: str
    team: str
    # The lifecycle's state after the step (open vocabulary: resolution owns the words).
    state: OpenCode
    previous_state: OpenCode | None = None
    customer_visible_state: CaseStatusCode
    # What moved the case: assign, merchant_answers, customer_accepts, auto_close...
    trigger: OpenCode
    # Who: `agent:alice`, `merchant:m-1`, `storefront:sf-1`, or `resolution_service` (timers).
    actor: SingleLine = Field(max_length=200)
    at: AwareDatetime
    reason: FreeText | None = Field(default=None, max_length=2000)
    assignee_id: SingleLine | None = Field(default=None, max_length=200)
    # Merchant verification.
    questions: list[FreeText] = Field(default_factory=list, max_length=20)
    requested_at: AwareDatetime | None = None
    respond_by: AwareDatetime | None = None
    stance: OpenCode | None = None
    evidence_refs: list[SingleLine] = Field(default_factory=list, max_length=50)
    # Responsibility and the offer.
    responsibility: OpenCode | None = None
    remedies: list[RemedyLine] = Field(default_factory=list, max_length=20)
    offer_total: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)
    policy_version: str | None = Field(default=None, max_length=100)
    rules_applied: list[str] = Field(default_factory=list, max_length=50)
    approval_reasons: list[FreeText] = Field(default_factory=list, max_length=20)
    offer_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    negotiation_round: int | None = Field(default=None, ge=0)
    referral_body: OpenCode | None = None
    # Execution.
    task_key: str | None = Field(default=None, max_length=100)
    task_kind: OpenCode | None = None
    task_state: OpenCode | None = None
    task_due_at: AwareDatetime | None = None
    # Decision, closure and appeal.
    resolved_at: AwareDatetime | None = None
    auto_close_at: AwareDatetime | None = None
    appeal_window_ends_at: AwareDatetime | None = None


class CaseAssigned(CaseChange):
    """The case was assigned (or reassigned) to an agent of its team."""

    event_type: ClassVar[str] = "case.assigned"
    schema_version: ClassVar[int] = 1


class CaseRetriaged(CaseChange):
    """A newer triage (category, priority, team) updated the case where it stands."""

    event_type: ClassVar[str] = "case.retriaged"
    schema_version: ClassVar[int] = 1


class CaseInvestigationStarted(CaseChange):
    """The assigned agent started investigating."""

    event_type: ClassVar[str] = "case.investigation_started"
    schema_version: ClassVar[int] = 1


class CaseMerchantVerificationRequested(CaseChange):
    """The merchant is asked to verify the complaint with evidence and a stance by a deadline."""

    event_type: ClassVar[str] = "case.merchant_verification_requested"
    schema_version: ClassVar[int] = 1


class CaseMerchantVerificationAnswered(CaseChange):
    """The merchant answered the verification: accepted responsibility or disputed it."""

    event_type: ClassVar[str] = "case.merchant_verification_answered"
    schema_version: ClassVar[int] = 1


class CaseMerchantVerificationDeadlineMissed(CaseChange):
    """The merchant did not answer in time: the case proceeds against the merchant."""

    event_type: ClassVar[str] = "case.merchant_verification_deadline_missed"
    schema_version: ClassVar[int] = 1


class CaseRemedyProposed(CaseChange):
    """Responsibility is decided and a remedy is proposed by the compensation policy."""

    event_type: ClassVar[str] = "case.remedy_proposed"
    schema_version: ClassVar[int] = 1


class CaseApprovalRequested(CaseChange):
    """The proposal needs a supervisor's approval (amount, flagged account or goodwill)."""

    event_type: ClassVar[str] = "case.approval_requested"
    schema_version: ClassVar[int] = 1


class CaseRemedyApproved(CaseChange):
    """A supervisor approved the proposal."""

    event_type: ClassVar[str] = "case.remedy_approved"
    schema_version: ClassVar[int] = 1


class CaseRemedyRejectedBySupervisor(CaseChange):
    """A supervisor rejected the proposal with a reason: the agent proposes again."""

    event_type: ClassVar[str] = "case.remedy_rejected_by_supervisor"
    schema_version: ClassVar[int] = 1


class CaseRemedyOffered(CaseChange):
    """The offer is with the customer: the case awaits their confirmation."""

    event_type: ClassVar[str] = "case.remedy_offered"
    schema_version: ClassVar[int] = 1


class CaseOfferAccepted(CaseChange):
    """The customer accepted the offer; the proof of consent is stored (its hash here)."""

    event_type: ClassVar[str] = "case.offer_accepted"
    schema_version: ClassVar[int] = 1


class CaseOfferRejected(CaseChange):
    """The customer rejected the offer: negotiation opens."""

    event_type: ClassVar[str] = "case.offer_rejected"
    schema_version: ClassVar[int] = 1


class CaseCounterOffered(CaseChange):
    """The agent made a counter-offer (a negotiation round)."""

    event_type: ClassVar[str] = "case.counter_offered"
    schema_version: ClassVar[int] = 1


class CaseEscalated(CaseChange):
    """Negotiation used its rounds: the case goes up to a supervisor."""

    event_type: ClassVar[str] = "case.escalated"
    schema_version: ClassVar[int] = 1


class CaseMediationStarted(CaseChange):
    """A supervisor mediates (调解)."""

    event_type: ClassVar[str] = "case.mediation_started"
    schema_version: ClassVar[int] = 1


class CaseReferred(CaseChange):
    """The dispute was referred to an outside body (consumer association, dispute centre...)."""

    event_type: ClassVar[str] = "case.referred"
    schema_version: ClassVar[int] = 1


class CaseExternalOutcomeRecorded(CaseChange):
    """The outside body's outcome was recorded: a settlement or a dismissal."""

    event_type: ClassVar[str] = "case.external_outcome_recorded"
    schema_version: ClassVar[int] = 1


class CaseExecutionStarted(CaseChange):
    """The accepted remedies became tasks with deadlines."""

    event_type: ClassVar[str] = "case.execution_started"
    schema_version: ClassVar[int] = 1


class CaseTaskUpdated(CaseChange):
    """An execution task progressed (started, a tracking number, a reference, a failure...)."""

    event_type: ClassVar[str] = "case.task_updated"
    schema_version: ClassVar[int] = 1


class CaseTaskCompleted(CaseChange):
    """An execution task is done, with the facts that prove it."""

    event_type: ClassVar[str] = "case.task_completed"
    schema_version: ClassVar[int] = 1


class CaseResolved(CaseChange):
    """Every task is done: the case is resolved (已完成)."""

    event_type: ClassVar[str] = "case.resolved"
    schema_version: ClassVar[int] = 1


class CaseRejected(CaseChange):
    """No remedy is owed: the case is decided with its explanation."""

    event_type: ClassVar[str] = "case.rejected"
    schema_version: ClassVar[int] = 1


class CaseClosed(CaseChange):
    """The case closed (已关闭): on its own after the decision, or when a review upheld it."""

    event_type: ClassVar[str] = "case.closed"
    schema_version: ClassVar[int] = 1


class CaseAppealed(CaseChange):
    """The customer appealed (申诉) the decision within the window."""

    event_type: ClassVar[str] = "case.appealed"
    schema_version: ClassVar[int] = 1


class CaseReviewStarted(CaseChange):
    """Someone other than the deciding agent reviews the appeal."""

    event_type: ClassVar[str] = "case.review_started"
    schema_version: ClassVar[int] = 1


class CaseDecisionUpheld(CaseChange):
    """The review upheld the decision."""

    event_type: ClassVar[str] = "case.decision_upheld"
    schema_version: ClassVar[int] = 1


class CaseReopened(CaseChange):
    """The review reopened the case: back to investigation."""

    event_type: ClassVar[str] = "case.reopened"
    schema_version: ClassVar[int] = 1


class CaseWithdrawn(CaseChange):
    """The customer withdrew the complaint: the case stops."""

    event_type: ClassVar[str] = "case.withdrawn"
    schema_version: ClassVar[int] = 1


CASE_CHANGES: tuple[type[CaseChange], ...] = (
    CaseAssigned,
    CaseRetriaged,
    CaseInvestigationStarted,
    CaseMerchantVerificationRequested,
    CaseMerchantVerificationAnswered,
    CaseMerchantVerificationDeadlineMissed,
    CaseRemedyProposed,
    CaseApprovalRequested,
    CaseRemedyApproved,
    CaseRemedyRejectedBySupervisor,
    CaseRemedyOffered,
    CaseOfferAccepted,
    CaseOfferRejected,
    CaseCounterOffered,
    CaseEscalated,
    CaseMediationStarted,
    CaseReferred,
    CaseExternalOutcomeRecorded,
    CaseExecutionStarted,
    CaseTaskUpdated,
    CaseTaskCompleted,
    CaseResolved,
    CaseRejected,
    CaseClosed,
    CaseAppealed,
    CaseReviewStarted,
    CaseDecisionUpheld,
    CaseReopened,
    CaseWithdrawn,
)


# --- notification.delivery.v1 --------------------------------------------------------


class AcknowledgementRecorded(EventPayload):
    """The customer's acknowledgement (receipt + promised time) was recorded for delivery."""

    event_type: ClassVar[str] = "acknowledgement.recorded"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.NOTIFICATION_DELIVERY

    notification_id: UUID
    complaint_number: str
    channel: ContactChannelCode
    # Only acknowledgements today; other kinds (progress updates...) will share this event.
    kind: OpenCode = "acknowledgement"
    respond_by: AwareDatetime
    recorded_at: AwareDatetime


class NotificationSent(EventPayload):
    """A message reached its channel's provider (SMTP relay, SMS or push gateway, webhook).

    Never carries the address or the words sent: those stay in notification's delivery log.
    """

    event_type: ClassVar[str] = "notification.sent"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.NOTIFICATION_DELIVERY

    message_id: UUID
    # The message's idempotency key (Idempotency-Key, webhook-id, Message-ID).
    delivery_key: SingleLine = Field(max_length=255)
    complaint_number: str
    # The lifecycle event or notification's own message it tells about: complaint.received...
    message_type: SingleLine = Field(max_length=100)
    # customer, merchant, assigned_agent, supervisor (open vocabulary).
    audience: OpenCode
    # sms, app_push, email, webhook (open vocabulary).
    channel: OpenCode
    attempts: int = Field(ge=1)
    provider_reference: SingleLine | None = Field(default=None, max_length=500)
    sent_at: AwareDatetime


class NotificationFailed(EventPayload):
    """A message did not go out: failed for good, given up after its retries, or uncertain."""

    event_type: ClassVar[str] = "notification.failed"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.NOTIFICATION_DELIVERY

    message_id: UUID
    delivery_key: SingleLine = Field(max_length=255)
    complaint_number: str
    message_type: SingleLine = Field(max_length=100)
    audience: OpenCode
    channel: OpenCode
    # failed, dead_letter (retries spent) or uncertain (sent, no answer, not retried).
    status: OpenCode
    reason: FreeText = Field(max_length=2000)
    attempts: int = Field(ge=0)
    failed_at: AwareDatetime


class SurveyCompleted(EventPayload):
    """A customer answered the satisfaction survey of a case (回访): once per case.

    The score and reasons feed the agent's, the merchant's and the platform's KPIs; the
    customer's comment stays in notification (the customer's own words may hold personal data).
    """

    event_type: ClassVar[str] = "survey.completed"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.NOTIFICATION_DELIVERY

    case_id: UUID
    complaint_number: str
    merchant_id: str
    score: int = Field(ge=1, le=5)
    # fast_response, unfair_remedy, merchant_uncooperative... (open vocabulary).
    reasons: list[OpenCode] = Field(default_factory=list, max_length=50)
    # Whose KPIs the reasons count for: agent, merchant, platform (open vocabulary).
    subjects: list[OpenCode] = Field(default_factory=list, max_length=10)
    has_comment: bool = False
    answered_at: AwareDatetime
