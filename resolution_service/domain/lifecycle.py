"""The case lifecycle (案件生命周期) as one table: (state, trigger) -> next state, guards, events.

Every change of a case's state goes through `fire`: it looks the pair up in `TRANSITIONS`,
checks the row's guards against a `CaseContext` and returns the row, whose events the service
writes to the outbox in the same transaction as the new state. A pair missing from the table,
or a guard that does not hold, raises `TransitionRefused` with the triggers that are allowed
instead (the API answers 409 with them). Nothing else in the service decides what may happen
next, and docs/resolution-lifecycle.md is generated from this table
(`python -m resolution_service.diagram`), so the two cannot drift.

Guards are named predicates over the context. The context carries facts the service already
knows (who is assigned, the offer's value and the agent's limit, negotiation rounds,
deadlines as instants, the current time); the rules that produce them live in the other
domain modules (policy, negotiation, verification, closure, tasks).
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from shared.events.vocabulary import CaseStatus


class CaseState(StrEnum):
    """Resolution's internal states of a case (customers see only `CaseStatus`)."""

    OPEN = "open"
    INVESTIGATING = "investigating"
    AWAITING_MERCHANT = "awaiting_merchant"
    REMEDY_PROPOSED = "remedy_proposed"
    PENDING_APPROVAL = "pending_approval"
    AWAITING_CUSTOMER = "awaiting_customer"
    NEGOTIATING = "negotiating"
    IN_MEDIATION = "in_mediation"
    REFERRED_EXTERNALLY = "referred_externally"
    ACCEPTED = "accepted"
    EXECUTING = "executing"
    RESOLVED = "resolved"
    REJECTED = "rejected"
    APPEALED = "appealed"
    UNDER_REVIEW = "under_review"
    REOPENED = "reopened"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


class Trigger(StrEnum):
    """What can happen to a case: an action by someone, an event, or a timer firing."""

    ASSIGN = "assign"
    RETRIAGE = "retriage"
    START_INVESTIGATION = "start_investigation"
    REQUEST_MERCHANT_VERIFICATION = "request_merchant_verification"
    MERCHANT_ANSWERS = "merchant_answers"
    VERIFICATION_DEADLINE_PASSES = "verification_deadline_passes"
    PROPOSE_REMEDY = "propose_remedy"
    SUBMIT_FOR_APPROVAL = "submit_for_approval"
    OFFER_TO_CUSTOMER = "offer_to_customer"
    SUPERVISOR_APPROVES = "supervisor_approves"
    SUPERVISOR_REJECTS = "supervisor_rejects"
    CUSTOMER_ACCEPTS = "customer_accepts"
    CUSTOMER_REJECTS = "customer_rejects"
    COUNTER_OFFER = "counter_offer"
    ESCALATE_TO_MEDIATION = "escalate_to_mediation"
    REFER_EXTERNALLY = "refer_externally"
    RECORD_EXTERNAL_SETTLEMENT = "record_external_settlement"
    RECORD_EXTERNAL_DISMISSAL = "record_external_dismissal"
    START_EXECUTION = "start_execution"
    UPDATE_TASK = "update_task"
    COMPLETE_TASK = "complete_task"
    FINISH_EXECUTION = "finish_execution"
    REJECT_CASE = "reject_case"
    AUTO_CLOSE = "auto_close"
    APPEAL = "appeal"
    START_REVIEW = "start_review"
    UPHOLD_DECISION = "uphold_decision"
    REOPEN = "reopen"
    WITHDRAW = "withdraw"


class CaseEvent(StrEnum):
    """Event types on resolution.case.v1 that transitions emit (past tense, dotted)."""

    OPENED = "case.opened"
    ASSIGNED = "case.assigned"
    RETRIAGED = "case.retriaged"
    INVESTIGATION_STARTED = "case.investigation_started"
    MERCHANT_VERIFICATION_REQUESTED = "case.merchant_verification_requested"
    MERCHANT_VERIFICATION_ANSWERED = "case.merchant_verification_answered"
    MERCHANT_VERIFICATION_DEADLINE_MISSED = "case.merchant_verification_deadline_missed"
    REMEDY_PROPOSED = "case.remedy_proposed"
    APPROVAL_REQUESTED = "case.approval_requested"
    REMEDY_APPROVED = "case.remedy_approved"
    REMEDY_REJECTED_BY_SUPERVISOR = "case.remedy_rejected_by_supervisor"
    # The offer is with the customer: the case awaits their confirmation.
    REMEDY_OFFERED = "case.remedy_offered"
    OFFER_ACCEPTED = "case.offer_accepted"
    OFFER_REJECTED = "case.offer_rejected"
    COUNTER_OFFERED = "case.counter_offered"
    ESCALATED = "case.escalated"
    MEDIATION_STARTED = "case.mediation_started"
    REFERRED = "case.referred"
    EXTERNAL_OUTCOME_RECORDED = "case.external_outcome_recorded"
    EXECUTION_STARTED = "case.execution_started"
    TASK_UPDATED = "case.task_updated"
    TASK_COMPLETED = "case.task_completed"
    RESOLVED = "case.resolved"
    REJECTED = "case.rejected"
    CLOSED = "case.closed"
    APPEALED = "case.appealed"
    REVIEW_STARTED = "case.review_started"
    DECISION_UPHELD = "case.decision_upheld"
    REOPENED = "case.reopened"
    WITHDRAWN = "case.withdrawn"


@dataclass(frozen=True)
class CaseContext:
    """The facts guards read; the service fills in what it knows, the rest keeps its default."""

    now: datetime | None = None
    assignee_id: str | None = None
    reviewer_id: str | None = None
    # A reason or explanation given with the action (rejections, reviews, dismissals).
    reason: str | None = None
    responsibility_decided: bool = False
    # The offer on the table: its money value, the deciding person's limit, and whether the
    # policy engine asked for approval for a reason of its own (goodwill above the ceiling).
    offer_total: Decimal = Decimal(0)
    approval_limit: Decimal = Decimal(0)
    account_flagged: bool = False
    policy_requires_approval: bool = False
    consent_recorded: bool = False
    # Offers the customer has rejected, and the rounds allowed before mediation.
    negotiation_rounds: int = 0
    max_negotiation_rounds: int = 2
    mediation_held: bool = False
    task_count: int = 0
    tasks_done: int = 0
    verification_due_at: datetime | None = None
    auto_close_at: datetime | None = None
    appeal_window_ends_at: datetime | None = None
    appealed_before: bool = False


@dataclass(frozen=True)
class Guard:
    """A named condition a transition needs; `description` is what people read."""

    name: str
    description: str
    check: Callable[[CaseContext], bool] = field(compare=False, repr=False)

    def __call__(self, context: CaseContext) -> bool:
        return self.check(context)


def _has_text(value: str | None) -> bool:
    return bool(value and value.strip())


def _reached(now: datetime | None, at: datetime | None) -> bool:
    return now is not None and at is not None and now >= at


def _amount_within_agent_limit(context: CaseContext) -> bool:
    return context.offer_total <= context.approval_limit


def _needs_approval(context: CaseContext) -> bool:
    return (
        not _amount_within_agent_limit(context)
        or context.account_flagged
        or context.policy_requires_approval
    )


HAS_ASSIGNEE = Guard("has_assignee", "an agent is assigned", lambda c: c.assignee_id is not None)
HAS_INDEPENDENT_REVIEWER = Guard(
    "has_independent_reviewer",
    "a reviewer other than the case's agent is named",
    lambda c: c.reviewer_id is not None and c.reviewer_id != c.assignee_id,
)
REASON_GIVEN = Guard("reason_given", "a reason is written", lambda c: _has_text(c.reason))
RESPONSIBILITY_DECIDED = Guard(
    "responsibility_decided",
    "responsibility is decided",
    lambda c: c.responsibility_decided,
)
VERIFICATION_OVERDUE = Guard(
    "verification_overdue",
    "the merchant's answer is past its deadline",
    lambda c: _reached(c.now, c.verification_due_at),
)
AMOUNT_WITHIN_AGENT_LIMIT = Guard(
    "amount_within_agent_limit",
    "offer_total <= approval_limit",
    _amount_within_agent_limit,
)
ACCOUNT_FLAGGED = Guard("account_flagged", "the account is flagged", lambda c: c.account_flagged)
NEEDS_APPROVAL = Guard(
    "needs_approval",
    "above the agent's limit, a flagged account, or a policy reason",
    _needs_approval,
)
WITHIN_AGENT_AUTHORITY = Guard(
    "within_agent_authority",
    "within the agent's limit, account not flagged, no policy reason",
    lambda c: not _needs_approval(c),
)
CONSENT_RECORDED = Guard(
    "consent_recorded",
    "proof of the customer's consent is stored",
    lambda c: c.consent_recorded,
)
NEGOTIATION_ROUNDS_LEFT = Guard(
    "negotiation_rounds_left",
    "negotiation_rounds < max_negotiation_rounds",
    lambda c: c.negotiation_rounds < c.max_negotiation_rounds,
)
NEGOTIATION_ROUNDS_USED = Guard(
    "negotiation_rounds_used",
    "negotiation_rounds >= max_negotiation_rounds",
    lambda c: c.negotiation_rounds >= c.max_negotiation_rounds,
)
NOT_MEDIATED_YET = Guard(
    "not_mediated_yet",
    "no supervisor mediation yet",
    lambda c: not c.mediation_held,
)
MEDIATION_HELD = Guard(
    "mediation_held", "a supervisor mediation was held", lambda c: c.mediation_held
)
TASKS_PLANNED = Guard("tasks_planned", "execution tasks are planned", lambda c: c.task_count > 0)
ALL_TASKS_DONE = Guard(
    "all_tasks_done",
    "every execution task is done",
    lambda c: c.task_count > 0 and c.tasks_done >= c.task_count,
)
AUTO_CLOSE_DUE = Guard(
    "auto_close_due",
    "the auto-close time has come",
    lambda c: _reached(c.now, c.auto_close_at),
)
WITHIN_APPEAL_WINDOW = Guard(
    "within_appeal_window",
    "now <= appeal_window_ends_at",
    lambda c: (
        c.now is not None
        and c.appeal_window_ends_at is not None
        and c.now <= c.appeal_window_ends_at
    ),
)
NOT_APPEALED_BEFORE = Guard(
    "not_appealed_before",
    "the case was not appealed before",
    lambda c: not c.appealed_before,
)

GUARDS: tuple[Guard, ...] = (
    HAS_ASSIGNEE,
    HAS_INDEPENDENT_REVIEWER,
    REASON_GIVEN,
    RESPONSIBILITY_DECIDED,
    VERIFICATION_OVERDUE,
    AMOUNT_WITHIN_AGENT_LIMIT,
    ACCOUNT_FLAGGED,
    NEEDS_APPROVAL,
    WITHIN_AGENT_AUTHORITY,
    CONSENT_RECORDED,
    NEGOTIATION_ROUNDS_LEFT,
    NEGOTIATION_ROUNDS_USED,
    NOT_MEDIATED_YET,
    MEDIATION_HELD,
    TASKS_PLANNED,
    ALL_TASKS_DONE,
    AUTO_CLOSE_DUE,
    WITHIN_APPEAL_WINDOW,
    NOT_APPEALED_BEFORE,
)


@dataclass(frozen=True)
class Transition:
    """One row's outcome: the state after it, the guards it needs, the events it emits."""

    next_state: CaseState
    guards: tuple[Guard, ...] = ()
    events: tuple[CaseEvent, ...] = ()


class TransitionRefused(Exception):  # noqa: N818 - a refusal, named as the decision it is
    """A trigger the table does not allow in this state, or whose guards do not hold."""

    def __init__(
        self,
        state: CaseState,
        trigger: Trigger,
        allowed_triggers: tuple[Trigger, ...],
        failed_guards: tuple[str, ...] = (),
    ) -> None:
        allowed = ", ".join(allowed_triggers) or "none"
        if failed_guards:
            why = f"{trigger} in state {state} needs {', '.join(failed_guards)}"
        else:
            why = f"{trigger} is not possible in state {state}"
        super().__init__(f"{why}; allowed now: {allowed}")
        self.state = state
        self.trigger = trigger
        self.allowed_triggers = allowed_triggers
        self.failed_guards = failed_guards


# --- The customer's view -------------------------------------------------------------
# Every internal state shows as one of the five states the manuals name. Intake's own
# statuses cover pending acceptance (a complaint not yet taken on); once a case exists the
# complaint is being processed, which is also what case.opened has always announced.
# A resolved or rejected case is completed: a decision was given and can still be appealed.
# Closed is for cases nobody will act on any more.
VISIBLE_STATE: Mapping[CaseState, CaseStatus] = MappingProxyType(
    {
        CaseState.OPEN: CaseStatus.PROCESSING,
        CaseState.INVESTIGATING: CaseStatus.PROCESSING,
        CaseState.AWAITING_MERCHANT: CaseStatus.PROCESSING,
        CaseState.REMEDY_PROPOSED: CaseStatus.PROCESSING,
        CaseState.PENDING_APPROVAL: CaseStatus.PROCESSING,
        CaseState.AWAITING_CUSTOMER: CaseStatus.AWAITING_CUSTOMER_CONFIRMATION,
        CaseState.NEGOTIATING: CaseStatus.PROCESSING,
        CaseState.IN_MEDIATION: CaseStatus.PROCESSING,
        CaseState.REFERRED_EXTERNALLY: CaseStatus.PROCESSING,
        CaseState.ACCEPTED: CaseStatus.PROCESSING,
        CaseState.EXECUTING: CaseStatus.PROCESSING,
        CaseState.RESOLVED: CaseStatus.COMPLETED,
        CaseState.REJECTED: CaseStatus.COMPLETED,
        CaseState.APPEALED: CaseStatus.PROCESSING,
        CaseState.UNDER_REVIEW: CaseStatus.PROCESSING,
        CaseState.REOPENED: CaseStatus.PROCESSING,
        CaseState.CLOSED: CaseStatus.CLOSED,
        CaseState.WITHDRAWN: CaseStatus.CLOSED,
    }
)

# States in which the case is still being worked: the customer may withdraw, an agent may be
# (re)assigned and a re-triage applies. They are exactly the states intake lets a customer
# withdraw from (pending, processing, awaiting confirmation).
_STILL_OPEN_TO_THE_CUSTOMER = frozenset(
    {
        CaseStatus.PENDING_ACCEPTANCE,
        CaseStatus.PROCESSING,
        CaseStatus.AWAITING_CUSTOMER_CONFIRMATION,
    }
)
ACTIVE_STATES: tuple[CaseState, ...] = tuple(
    state for state in CaseState if VISIBLE_STATE[state] in _STILL_OPEN_TO_THE_CUSTOMER
)
# A decision was given: it closes on its own after a while, and can be appealed.
DECIDED_STATES: tuple[CaseState, ...] = (CaseState.RESOLVED, CaseState.REJECTED)
# Nothing leaves these states.
TERMINAL_STATES: tuple[CaseState, ...] = (CaseState.WITHDRAWN,)

INITIAL_STATE = CaseState.OPEN
# What opening a case (on complaint.triaged) emits; it has no "from" state.
OPENING = Transition(next_state=INITIAL_STATE, events=(CaseEvent.OPENED,))


@dataclass(frozen=True)
class Row:
    """One line of the table as written: from state, trigger, and its transition."""

    state: CaseState
    trigger: Trigger
    transition: Transition


def _row(
    state: CaseState,
    trigger: Trigger,
    next_state: CaseState,
    *,
    guards: tuple[Guard, ...] = (),
    events: tuple[CaseEvent, ...] = (),
) -> Row:
    return Row(state, trigger, Transition(next_state, guards, events))


# Short aliases keep each row of the table readable on a line or two.
S, T, E = CaseState, Trigger, CaseEvent

# The path a case walks, one row per allowed (state, trigger).
FLOW: tuple[Row, ...] = (
    _row(S.OPEN, T.START_INVESTIGATION, S.INVESTIGATING, guards=(HAS_ASSIGNEE,),
         events=(E.INVESTIGATION_STARTED,)),
    _row(S.INVESTIGATING, T.REQUEST_MERCHANT_VERIFICATION, S.AWAITING_MERCHANT,
         events=(E.MERCHANT_VERIFICATION_REQUESTED,)),
    _row(S.AWAITING_MERCHANT, T.MERCHANT_ANSWERS, S.INVESTIGATING,
         events=(E.MERCHANT_VERIFICATION_ANSWERED,)),
    # The timer may fire late or twice: the guard makes a stale firing harmless.
    _row(S.AWAITING_MERCHANT, T.VERIFICATION_DEADLINE_PASSES, S.INVESTIGATING,
         guards=(VERIFICATION_OVERDUE,), events=(E.MERCHANT_VERIFICATION_DEADLINE_MISSED,)),
    _row(S.INVESTIGATING, T.PROPOSE_REMEDY, S.REMEDY_PROPOSED,
         guards=(RESPONSIBILITY_DECIDED,), events=(E.REMEDY_PROPOSED,)),
    _row(S.INVESTIGATING, T.REJECT_CASE, S.REJECTED,
         guards=(RESPONSIBILITY_DECIDED, REASON_GIVEN), events=(E.REJECTED,)),
    _row(S.REMEDY_PROPOSED, T.SUBMIT_FOR_APPROVAL, S.PENDING_APPROVAL,
         guards=(NEEDS_APPROVAL,), events=(E.APPROVAL_REQUESTED,)),
    _row(S.REMEDY_PROPOSED, T.OFFER_TO_CUSTOMER, S.AWAITING_CUSTOMER,
         guards=(WITHIN_AGENT_AUTHORITY,), events=(E.REMEDY_OFFERED,)),
    _row(S.PENDING_APPROVAL, T.SUPERVISOR_APPROVES, S.AWAITING_CUSTOMER,
         events=(E.REMEDY_APPROVED, E.REMEDY_OFFERED)),
    # Back to the agent, who proposes again with the supervisor's reason in hand.
    _row(S.PENDING_APPROVAL, T.SUPERVISOR_REJECTS, S.INVESTIGATING,
         guards=(REASON_GIVEN,), events=(E.REMEDY_REJECTED_BY_SUPERVISOR,)),
    _row(S.AWAITING_CUSTOMER, T.CUSTOMER_ACCEPTS, S.ACCEPTED,
         guards=(CONSENT_RECORDED,), events=(E.OFFER_ACCEPTED,)),
    _row(S.AWAITING_CUSTOMER, T.CUSTOMER_REJECTS, S.NEGOTIATING, events=(E.OFFER_REJECTED,)),
    # A counter-offer is a new proposal: it goes through approval like the first one.
    _row(S.NEGOTIATING, T.COUNTER_OFFER, S.REMEDY_PROPOSED,
         guards=(NEGOTIATION_ROUNDS_LEFT,), events=(E.COUNTER_OFFERED, E.REMEDY_PROPOSED)),
    _row(S.NEGOTIATING, T.ESCALATE_TO_MEDIATION, S.IN_MEDIATION,
         guards=(NEGOTIATION_ROUNDS_USED, NOT_MEDIATED_YET),
         events=(E.ESCALATED, E.MEDIATION_STARTED)),
    _row(S.NEGOTIATING, T.REFER_EXTERNALLY, S.REFERRED_EXTERNALLY,
         guards=(MEDIATION_HELD,), events=(E.REFERRED,)),
    _row(S.IN_MEDIATION, T.PROPOSE_REMEDY, S.REMEDY_PROPOSED, events=(E.REMEDY_PROPOSED,)),
    _row(S.IN_MEDIATION, T.REFER_EXTERNALLY, S.REFERRED_EXTERNALLY, events=(E.REFERRED,)),
    # The external body's settlement stands for the customer's consent.
    _row(S.REFERRED_EXTERNALLY, T.RECORD_EXTERNAL_SETTLEMENT, S.ACCEPTED,
         events=(E.EXTERNAL_OUTCOME_RECORDED,)),
    _row(S.REFERRED_EXTERNALLY, T.RECORD_EXTERNAL_DISMISSAL, S.REJECTED,
         guards=(REASON_GIVEN,), events=(E.EXTERNAL_OUTCOME_RECORDED, E.REJECTED)),
    _row(S.ACCEPTED, T.START_EXECUTION, S.EXECUTING,
         guards=(TASKS_PLANNED,), events=(E.EXECUTION_STARTED,)),
    _row(S.EXECUTING, T.UPDATE_TASK, S.EXECUTING, events=(E.TASK_UPDATED,)),
    _row(S.EXECUTING, T.COMPLETE_TASK, S.EXECUTING, events=(E.TASK_COMPLETED,)),
    _row(S.EXECUTING, T.FINISH_EXECUTION, S.RESOLVED,
         guards=(ALL_TASKS_DONE,), events=(E.RESOLVED,)),
    _row(S.RESOLVED, T.AUTO_CLOSE, S.CLOSED, guards=(AUTO_CLOSE_DUE,), events=(E.CLOSED,)),
    _row(S.REJECTED, T.AUTO_CLOSE, S.CLOSED, guards=(AUTO_CLOSE_DUE,), events=(E.CLOSED,)),
    # The appeal window runs from the decision, not from the closing: a closed case can
    # still be appealed inside it.
    _row(S.RESOLVED, T.APPEAL, S.APPEALED,
         guards=(WITHIN_APPEAL_WINDOW, NOT_APPEALED_BEFORE), events=(E.APPEALED,)),
    _row(S.REJECTED, T.APPEAL, S.APPEALED,
         guards=(WITHIN_APPEAL_WINDOW, NOT_APPEALED_BEFORE), events=(E.APPEALED,)),
    _row(S.CLOSED, T.APPEAL, S.APPEALED,
         guards=(WITHIN_APPEAL_WINDOW, NOT_APPEALED_BEFORE), events=(E.APPEALED,)),
    _row(S.APPEALED, T.START_REVIEW, S.UNDER_REVIEW,
         guards=(HAS_INDEPENDENT_REVIEWER,), events=(E.REVIEW_STARTED,)),
    # The review is the last word: an upheld decision closes the case for good.
    _row(S.UNDER_REVIEW, T.UPHOLD_DECISION, S.CLOSED,
         guards=(REASON_GIVEN,), events=(E.DECISION_UPHELD, E.CLOSED)),
    _row(S.UNDER_REVIEW, T.REOPEN, S.REOPENED, guards=(REASON_GIVEN,), events=(E.REOPENED,)),
    _row(S.REOPENED, T.START_INVESTIGATION, S.INVESTIGATING, guards=(HAS_ASSIGNEE,),
         events=(E.INVESTIGATION_STARTED,)),
)  # fmt: skip


@dataclass(frozen=True)
class AmbientRule:
    """A trigger allowed the same way in every active state (None: the state stays)."""

    trigger: Trigger
    next_state: CaseState | None
    guards: tuple[Guard, ...] = ()
    events: tuple[CaseEvent, ...] = ()


# Triggers every active state accepts alike: drawn once in the docs rather than per state.
AMBIENT: tuple[AmbientRule, ...] = (
    AmbientRule(Trigger.ASSIGN, None, (HAS_ASSIGNEE,), (CaseEvent.ASSIGNED,)),
    # A newer triage (category, priority, team) updates the case where it stands.
    AmbientRule(Trigger.RETRIAGE, None, (), (CaseEvent.RETRIAGED,)),
    # complaint.withdrawn: intake already accepted the withdrawal, so no guard may refuse it.
    AmbientRule(Trigger.WITHDRAW, CaseState.WITHDRAWN, (), (CaseEvent.WITHDRAWN,)),
)


def _ambient_rows(rules: Iterable[AmbientRule]) -> tuple[Row, ...]:
    return tuple(
        Row(state, rule.trigger, Transition(rule.next_state or state, rule.guards, rule.events))
        for rule in rules
        for state in ACTIVE_STATES
    )


def _build_table(rows: Iterable[Row]) -> Mapping[tuple[CaseState, Trigger], Transition]:
    table: dict[tuple[CaseState, Trigger], Transition] = {}
    for row in rows:
        key = (row.state, row.trigger)
        if key in table:
            raise ValueError(f"the lifecycle table lists {row.trigger} in {row.state} twice")
        table[key] = row.transition
    return MappingProxyType(table)


ROWS: tuple[Row, ...] = FLOW + _ambient_rows(AMBIENT)
TRANSITIONS: Mapping[tuple[CaseState, Trigger], Transition] = _build_table(ROWS)


def visible_state(state: CaseState) -> CaseStatus:
    """The customer-visible state of an internal state."""
    return VISIBLE_STATE[state]


def triggers_from(state: CaseState) -> tuple[Trigger, ...]:
    """Every trigger the table lists for a state, guards aside, in table order."""
    return tuple(trigger for (source, trigger) in TRANSITIONS if source is state)


def allowed_triggers(state: CaseState, context: CaseContext) -> tuple[Trigger, ...]:
    """The triggers that `fire` would accept now: listed for the state, guards holding."""
    return tuple(
        trigger
        for trigger in triggers_from(state)
        if all(guard(context) for guard in TRANSITIONS[(state, trigger)].guards)
    )


def fire(state: CaseState, trigger: Trigger, context: CaseContext) -> Transition:
    """The transition for `trigger` in `state`; TransitionRefused lists what is allowed."""
    transition = TRANSITIONS.get((state, trigger))
    if transition is None:
        raise TransitionRefused(state, trigger, allowed_triggers(state, context))
    failed = tuple(guard.name for guard in transition.guards if not guard(context))
    if failed:
        raise TransitionRefused(state, trigger, allowed_triggers(state, context), failed)
    return transition
