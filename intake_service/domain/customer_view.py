"""The customer's view of a complaint: five visible states, a timeline, the next promise.

Customers never see the platform's internal states. Each complaint shows one of five states
(pending acceptance 待受理, processing 处理中, awaiting customer confirmation 待确认,
completed 已完成, closed 已关闭), a timeline of the steps that concern them, and the next thing
promised with its deadline. Intake's own decisions set the state directly; the other services'
events are mapped by the table below, and an event type missing from it is ignored (services
add events before this view learns them). A later event never is overridden by an earlier one
arriving late, and a complaint the customer withdrew or intake rejected stays closed.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.events.vocabulary import CaseStatus, known


class IntakeStatus(StrEnum):
    """Intake's own status of a complaint."""

    RECEIVED = "received"
    NEEDS_INFO = "needs_info"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


VisibleState = CaseStatus

# Intake's statuses as the customer sees them: a complaint waiting for information is not
# yet accepted; a rejected or withdrawn one is closed.
VISIBLE_BY_INTAKE_STATUS: dict[IntakeStatus, VisibleState] = {
    IntakeStatus.RECEIVED: VisibleState.PENDING_ACCEPTANCE,
    IntakeStatus.NEEDS_INFO: VisibleState.PENDING_ACCEPTANCE,
    IntakeStatus.REJECTED: VisibleState.CLOSED,
    IntakeStatus.WITHDRAWN: VisibleState.CLOSED,
}
# Intake's statuses after which no other service's event changes what the customer sees.
FINAL_INTAKE_STATUSES = frozenset({IntakeStatus.REJECTED, IntakeStatus.WITHDRAWN})
# States in which the customer may still withdraw.
WITHDRAWABLE = frozenset(
    {
        VisibleState.PENDING_ACCEPTANCE,
        VisibleState.PROCESSING,
        VisibleState.AWAITING_CUSTOMER_CONFIRMATION,
    }
)
# States that count as open for duplicates and the per-customer cap.
OPEN_STATES = WITHDRAWABLE


@dataclass(frozen=True)
class Step:
    """One customer-visible step of the timeline, with a summary in both languages."""

    code: str
    summary_zh: str
    summary_en: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ViewChange:
    """What one event changes: a timeline step, maybe the state and the next promise."""

    step: Step
    visible_state: VisibleState | None = None
    next_step: str | None = None
    next_step_due_at: datetime | None = None


def _triaged(payload: Mapping[str, Any]) -> ViewChange:
    due = payload["first_response_due_at"]
    return ViewChange(
        step=Step(
            "triaged",
            "投诉已分类，已转交负责团队",
            "Your complaint was classified and passed to the team that handles it",
            {"category": payload["category"], "priority": payload["priority"]},
        ),
        next_step="first_response",
        next_step_due_at=due,
    )


def _case_opened(payload: Mapping[str, Any]) -> ViewChange:
    state = known(CaseStatus, payload.get("status")) or VisibleState.PROCESSING
    return ViewChange(
        step=Step("case_opened", "专人正在处理您的投诉", "An agent is now handling your complaint"),
        visible_state=state,
        next_step="first_response",
        next_step_due_at=payload["first_response_due_at"],
    )


def _acknowledged(payload: Mapping[str, Any]) -> ViewChange:
    return ViewChange(
        step=Step(
            "acknowledgement_sent",
            "已向您发送受理回执",
            "We sent you a receipt for your complaint",
            {"channel": payload["channel"]},
        )
    )


@dataclass(frozen=True)
class CaseStep:
    """A case event the customer sees: its step, and the promise that follows it (if any).

    Case events carry `customer_visible_state` (resolution's lifecycle maps its states to the
    five), so one rule serves them all; an unknown state keeps what the customer saw.
    """

    code: str
    summary_zh: str
    summary_en: str
    next_step: str | None = None
    # The payload field holding the next step's deadline.
    due_field: str | None = None

    def __call__(self, payload: Mapping[str, Any]) -> ViewChange:
        details: dict[str, Any] = {}
        if payload.get("remedies"):
            details["remedies"] = [r["description"] for r in payload["remedies"]]
        if payload.get("offer_hash"):
            details["offer_hash"] = payload["offer_hash"]
        return ViewChange(
            step=Step(self.code, self.summary_zh, self.summary_en, details),
            visible_state=known(CaseStatus, payload.get("customer_visible_state")),
            next_step=self.next_step,
            next_step_due_at=payload.get(self.due_field) if self.due_field else None,
        )


CASE_STEPS: tuple[tuple[str, CaseStep], ...] = (
    (
        "case.remedy_offered",
        CaseStep(
            "remedy_offered",
            "我们为您提出了解决方案，请确认是否接受",
            "We offered you a resolution: please accept or decline it",
            "customer_decision",
        ),
    ),
    (
        "case.offer_accepted",
        CaseStep(
            "offer_accepted",
            "您已接受解决方案，我们正在执行",
            "You accepted the resolution; it is being carried out",
            "execution",
        ),
    ),
    (
        "case.offer_rejected",
        CaseStep(
            "offer_rejected",
            "您未接受方案，我们正在与您进一步协商",
            "You declined the offer; we are working on another one with you",
            "new_offer",
        ),
    ),
    (
        "case.resolved",
        CaseStep(
            "resolved",
            "投诉已解决，如有异议可在期限内申诉",
            "Your complaint is resolved; you may appeal within the window",
            "appeal_window",
            "appeal_window_ends_at",
        ),
    ),
    (
        "case.rejected",
        CaseStep(
            "decided_without_remedy",
            "投诉已处理完毕，未予支持，详见说明",
            "Your complaint was decided without a remedy; see the explanation",
            "appeal_window",
            "appeal_window_ends_at",
        ),
    ),
    (
        "case.closed",
        CaseStep(
            "closed",
            "投诉已关闭",
            "Your complaint is closed",
            "appeal_window",
            "appeal_window_ends_at",
        ),
    ),
    (
        "case.appealed",
        CaseStep(
            "appealed",
            "已收到您的申诉，将由上级复核",
            "We received your appeal; a senior reviewer will look at it",
            "appeal_review",
        ),
    ),
    (
        "case.reopened",
        CaseStep(
            "reopened",
            "复核后，您的投诉已重新处理",
            "After review, your complaint was reopened and is being handled again",
            "new_offer",
        ),
    ),
)

# Events of the other services the customer's view knows, by event type.
VIEW_RULES: dict[str, Callable[[Mapping[str, Any]], ViewChange]] = {
    "complaint.triaged": _triaged,
    "case.opened": _case_opened,
    "acknowledgement.recorded": _acknowledged,
    **dict(CASE_STEPS),
}


def view_change(event_type: str, payload: Mapping[str, Any]) -> ViewChange | None:
    """What an event of another service changes in the customer's view; None if unknown."""
    rule = VIEW_RULES.get(event_type)
    return rule(payload) if rule is not None else None


@dataclass(frozen=True)
class ViewState:
    """What the customer currently sees, and when it last changed."""

    intake_status: str
    visible_state: str
    changed_at: datetime
    next_step: str | None
    next_step_due_at: datetime | None


def apply_change(current: ViewState, change: ViewChange, at: datetime) -> ViewState | None:
    """The view after an event at `at`, or None when its state and promise do not apply.

    An event older than the last change (events of different services race) or one arriving
    after the customer withdrew or intake rejected the complaint adds its step only.
    """
    if current.intake_status in FINAL_INTAKE_STATUSES or at < current.changed_at:
        return None
    if change.visible_state is None and change.next_step is None:
        return None
    return ViewState(
        intake_status=current.intake_status,
        visible_state=change.visible_state or current.visible_state,
        changed_at=at,
        next_step=change.next_step if change.next_step is not None else current.next_step,
        next_step_due_at=change.next_step_due_at
        if change.next_step is not None
        else current.next_step_due_at,
    )


def intake_step(status: IntakeStatus, **details: Any) -> Step:
    """The timeline step of one of intake's own decisions."""
    summaries = {
        IntakeStatus.RECEIVED: (
            "投诉已受理，编号已生成",
            "Your complaint was received and numbered",
        ),
        IntakeStatus.NEEDS_INFO: ("请补充以下信息", "Please supply the missing information"),
        IntakeStatus.REJECTED: ("投诉未能受理", "Your request could not be accepted"),
        IntakeStatus.WITHDRAWN: ("投诉已撤回", "You withdrew your complaint"),
    }
    zh, en = summaries[status]
    return Step(status.value, zh, en, details)
