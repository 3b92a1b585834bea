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


# Events of the other services the customer's view knows, by event type.
VIEW_RULES: dict[str, Callable[[Mapping[str, Any]], ViewChange]] = {
    "complaint.triaged": _triaged,
    "case.opened": _case_opened,
    "acknowledgement.recorded": _acknowledged,
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
