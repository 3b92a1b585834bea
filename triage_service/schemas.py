"""HTTP models of the triage API."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.events.vocabulary import CODE_PATTERN, Category, Priority
from shared.text import FreeText


class DeadlineView(BaseModel):
    """One SLA clock: its deadline, when it warns, where it stands and what it announced."""

    # None while the clocks are paused (no deadline runs then).
    due_at: datetime | None
    warn_at: datetime | None
    # on_track, warning, breached or paused, at the time of the answer.
    state: str
    warned_at: datetime | None = None
    breached_at: datetime | None = None


class TriageView(BaseModel):
    """Triage's view of a complaint, with the reasons for every part of the decision."""

    complaint_id: UUID
    complaint_number: str
    merchant_id: str
    # Open values (shared.events.vocabulary lists the known ones): shown as stored.
    category: str
    subcategory: str | None = None
    priority: str
    team: str
    # True until a person re-triages the complaint.
    provisional: bool
    # The classifier was unsure: the complaint waits in the manual-triage queue.
    manual_review: bool = False
    confidence: float | None = None
    responsibility: str | None = None
    # Every reason joined in one line (the first version of this view had only this).
    reason: str
    reasons: list[str] = Field(default_factory=list)
    # The features that pushed hardest towards the tag (`keyword:damaged`, `target=product`).
    signals: list[str] = Field(default_factory=list)
    classifier_version: str | None = None
    # merchant:<id> or sku:<sku> when the complaint is one of a group complaint.
    group_key: str | None = None
    # The other complaints of the same group.
    linked_complaints: list[UUID] = Field(default_factory=list)
    received_at: datetime
    triaged_at: datetime
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None = None
    first_response: DeadlineView
    resolution: DeadlineView
    paused: bool = False
    # 0 until a breach; then the step of the chain reached (1 agent, 2 supervisor, 3 head).
    escalation_level: int = 0
    escalated_to: str | None = None
    # Withdrawn by the customer, or the case completed or closed: every clock stopped.
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    retriaged_at: datetime | None = None
    retriaged_by: str | None = None
    retriage_reason: str | None = None


class RetriageRequest(BaseModel):
    """An agent's change of a complaint's triage: any of category, tag and priority, and why."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "subcategory": "lost",
                    "priority": "important",
                    "reason": "the carrier confirmed the parcel is lost; not a damaged item",
                }
            ]
        },
    )

    category: Category | None = None
    # A level-2 code of the taxonomy; it names its category.
    subcategory: str | None = Field(default=None, pattern=CODE_PATTERN)
    priority: Priority | None = None
    reason: FreeText = Field(min_length=3, max_length=1000)


class QueueItem(BaseModel):
    """One open complaint in a queue, with its deadline and where it stands."""

    complaint_id: UUID
    complaint_number: str
    merchant_id: str
    category: str
    subcategory: str | None
    priority: str
    team: str
    manual_review: bool
    confidence: float | None
    received_at: datetime
    # The first-response deadline the queue is sorted by; None while paused.
    due_at: datetime | None
    # on_track, warning, breached or paused.
    state: str
    resolution_due_at: datetime | None
    resolution_state: str
    escalation_level: int
    group_key: str | None


class TriageQueue(BaseModel):
    """A queue of open complaints, soonest deadline first (paused ones last)."""

    team: str
    as_of: datetime
    items: list[QueueItem]


class RetrainReport(BaseModel):
    """What the classifier was trained on this time."""

    model_version: str
    previous_version: str | None
    base_examples: int
    # Agents' corrections that name a tag and still have the customer's words.
    corrections_used: int
    trained_at: datetime
