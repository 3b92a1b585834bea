"""The lifecycle table: every transition allowed, every other pair refused, every guard bites."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import product
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resolution_service.domain.lifecycle import (
    ACTIVE_STATES,
    AMBIENT,
    FLOW,
    GUARDS,
    INITIAL_STATE,
    OPENING,
    ROWS,
    TERMINAL_STATES,
    TRANSITIONS,
    VISIBLE_STATE,
    CaseContext,
    CaseEvent,
    CaseState,
    Guard,
    Row,
    Transition,
    TransitionRefused,
    Trigger,
    allowed_triggers,
    fire,
    triggers_from,
    visible_state,
)
from shared.events.vocabulary import CaseStatus

NOW = datetime(2025, 6, 10, 10, 0, tzinfo=UTC)
BEFORE, AFTER = NOW - timedelta(hours=1), NOW + timedelta(hours=1)

# For each guard: context fields that make it hold, and fields that make it fail.
SATISFY: dict[str, dict[str, Any]] = {
    "has_assignee": {"assignee_id": "agent-1"},
    "has_independent_reviewer": {"assignee_id": "agent-1", "reviewer_id": "supervisor-1"},
    "reason_given": {"reason": "the photo shows the crack"},
    "responsibility_decided": {"responsibility_decided": True},
    "verification_overdue": {"now": NOW, "verification_due_at": BEFORE},
    "amount_within_agent_limit": {"offer_total": Decimal(100), "approval_limit": Decimal(500)},
    "account_flagged": {"account_flagged": True},
    "needs_approval": {"offer_total": Decimal(600), "approval_limit": Decimal(500)},
    "within_agent_authority": {"offer_total": Decimal(100), "approval_limit": Decimal(500)},
    "consent_recorded": {"consent_recorded": True},
    "negotiation_rounds_left": {"negotiation_rounds": 1, "max_negotiation_rounds": 2},
    "negotiation_rounds_used": {"negotiation_rounds": 2, "max_negotiation_rounds": 2},
    "not_mediated_yet": {"mediation_held": False},
    "mediation_held": {"mediation_held": True},
    "tasks_planned": {"task_count": 2},
    "all_tasks_done": {"task_count": 2, "tasks_done": 2},
    "auto_close_due": {"now": NOW, "auto_close_at": BEFORE},
    "within_appeal_window": {"now": NOW, "appeal_window_ends_at": AFTER},
    "not_appealed_before": {"appealed_before": False},
}
VIOLATE: dict[str, dict[str, Any]] = {
    "has_assignee": {"assignee_id": None},
    "has_independent_reviewer": {"assignee_id": "agent-1", "reviewer_id": "agent-1"},
    "reason_given": {"reason": "   "},
    "responsibility_decided": {"responsibility_decided": False},
    "verification_overdue": {"now": NOW, "verification_due_at": AFTER},
    "amount_within_agent_limit": {"offer_total": Decimal(600), "approval_limit": Decimal(500)},
    "account_flagged": {"account_flagged": False},
    "needs_approval": {"offer_total": Decimal(100), "approval_limit": Decimal(500)},
    "within_agent_authority": {"account_flagged": True},
    "consent_recorded": {"consent_recorded": False},
    "negotiation_rounds_left": {"negotiation_rounds": 2, "max_negotiation_rounds": 2},
    "negotiation_rounds_used": {"negotiation_rounds": 1, "max_negotiation_rounds": 2},
    "not_mediated_yet": {"mediation_held": True},
    "mediation_held": {"mediation_held": False},
    "tasks_planned": {"task_count": 0},
    "all_tasks_done": {"task_count": 2, "tasks_done": 1},
    "auto_close_due": {"now": NOW, "auto_close_at": AFTER},
    "within_appeal_window": {"now": NOW, "appeal_window_ends_at": BEFORE},
    "not_appealed_before": {"appealed_before": True},
}


def satisfying(guards: tuple[Guard, ...]) -> CaseContext:
    """A context in which every one of `guards` holds."""
    context = CaseContext()
    for guard in guards:
        context = replace(context, **SATISFY[guard.name])
    return context


def row_id(row: Row) -> str:
    return f"{row.state}-{row.trigger}"


MISSING_PAIRS = [
    (state, trigger)
    for state, trigger in product(CaseState, Trigger)
    if (state, trigger) not in TRANSITIONS
]
GUARDED = [(row, guard) for row in ROWS for guard in row.transition.guards]


# --- The table's shape ---------------------------------------------------------------


def test_the_table_covers_the_states_and_triggers_the_issue_names():
    assert {state.value for state in CaseState} >= {
        "open", "investigating", "awaiting_merchant", "remedy_proposed", "pending_approval",
        "awaiting_customer", "negotiating", "in_mediation", "referred_externally", "accepted",
        "executing", "resolved", "closed", "rejected", "appealed", "under_review", "reopened",
        "withdrawn",
    }  # fmt: skip
    assert {trigger for (_, trigger) in TRANSITIONS} == set(Trigger)
    assert {state for (state, _) in TRANSITIONS} == set(CaseState) - set(TERMINAL_STATES)
    reached = {transition.next_state for transition in TRANSITIONS.values()}
    assert reached | {INITIAL_STATE} == set(CaseState)


def test_every_event_type_is_emitted_by_some_transition():
    emitted = {event for transition in TRANSITIONS.values() for event in transition.events}
    assert emitted | set(OPENING.events) == set(CaseEvent)
    assert all(event.value.startswith("case.") for event in CaseEvent)


def test_rows_are_unique_and_the_table_is_exactly_the_rows():
    assert len(ROWS) == len(TRANSITIONS) == len(FLOW) + len(AMBIENT) * len(ACTIVE_STATES)
    for row in ROWS:
        assert TRANSITIONS[(row.state, row.trigger)] is row.transition


def test_every_guard_in_the_table_is_listed_and_named_uniquely():
    used = {guard for transition in TRANSITIONS.values() for guard in transition.guards}
    assert used <= set(GUARDS)
    assert len({guard.name for guard in GUARDS}) == len(GUARDS)


@pytest.mark.parametrize("state", list(CaseState))
def test_every_state_maps_to_exactly_one_visible_state(state: CaseState):
    assert isinstance(visible_state(state), CaseStatus)
    assert VISIBLE_STATE[state] is visible_state(state)


def test_the_customer_sees_the_manuals_states_at_the_right_moments():
    assert visible_state(CaseState.OPEN) is CaseStatus.PROCESSING
    assert visible_state(CaseState.AWAITING_CUSTOMER) is CaseStatus.AWAITING_CUSTOMER_CONFIRMATION
    assert visible_state(CaseState.RESOLVED) is CaseStatus.COMPLETED
    assert visible_state(CaseState.REJECTED) is CaseStatus.COMPLETED
    assert visible_state(CaseState.CLOSED) is CaseStatus.CLOSED
    assert visible_state(CaseState.WITHDRAWN) is CaseStatus.CLOSED


def test_active_states_are_those_a_customer_may_still_withdraw_from():
    open_to_customer = {
        CaseStatus.PENDING_ACCEPTANCE,
        CaseStatus.PROCESSING,
        CaseStatus.AWAITING_CUSTOMER_CONFIRMATION,
    }
    assert set(ACTIVE_STATES) == {s for s in CaseState if VISIBLE_STATE[s] in open_to_customer}
    assert CaseState.RESOLVED not in ACTIVE_STATES
    assert CaseState.CLOSED not in ACTIVE_STATES


def test_opening_a_case_emits_case_opened_into_the_initial_state():
    assert Transition(next_state=CaseState.OPEN, events=(CaseEvent.OPENED,)) == OPENING


# --- Every allowed transition --------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_every_transition_of_the_table_is_allowed_when_its_guards_hold(row: Row):
    context = satisfying(row.transition.guards)
    transition = fire(row.state, row.trigger, context)
    assert transition is row.transition
    assert row.trigger in allowed_triggers(row.state, context)


@pytest.mark.parametrize(
    ("row", "guard"), GUARDED, ids=lambda v: getattr(v, "name", None) or row_id(v)
)
def test_a_transition_is_refused_naming_the_guard_that_fails(row: Row, guard: Guard):
    others = tuple(g for g in row.transition.guards if g is not guard)
    context = replace(satisfying(others), **VIOLATE[guard.name])
    with pytest.raises(TransitionRefused) as refused:
        fire(row.state, row.trigger, context)
    assert guard.name in refused.value.failed_guards
    assert row.trigger not in refused.value.allowed_triggers
    assert refused.value.allowed_triggers == allowed_triggers(row.state, context)


# --- Every pair outside the table ----------------------------------------------------


@pytest.mark.parametrize(("state", "trigger"), MISSING_PAIRS, ids=lambda v: str(v))
def test_every_pair_outside_the_table_is_refused_with_the_allowed_triggers(
    state: CaseState, trigger: Trigger
):
    context = satisfying(GUARDS[:6])
    with pytest.raises(TransitionRefused) as refused:
        fire(state, trigger, context)
    error = refused.value
    assert (error.state, error.trigger, error.failed_guards) == (state, trigger, ())
    assert error.allowed_triggers == allowed_triggers(state, context)
    assert set(error.allowed_triggers) <= set(triggers_from(state))
    assert str(trigger) in str(error)


def test_the_refusal_reads_as_an_answer_for_a_409():
    with pytest.raises(TransitionRefused) as refused:
        fire(CaseState.INVESTIGATING, Trigger.CUSTOMER_ACCEPTS, CaseContext(assignee_id="a"))
    assert str(refused.value) == (
        "customer_accepts is not possible in state investigating; allowed now: "
        "request_merchant_verification, assign, retriage, withdraw"
    )


# --- Guards --------------------------------------------------------------------------


@pytest.mark.parametrize("guard", GUARDS, ids=lambda g: g.name)
def test_each_guard_holds_and_fails_as_its_description_says(guard: Guard):
    assert guard(replace(CaseContext(), **SATISFY[guard.name]))
    assert not guard(replace(CaseContext(), **VIOLATE[guard.name]))


def test_approval_is_needed_above_the_limit_for_a_flagged_account_or_for_a_policy_reason():
    def route(**facts: Any) -> tuple[Trigger, ...]:
        context = CaseContext(approval_limit=Decimal(500), **facts)
        return tuple(
            t
            for t in allowed_triggers(CaseState.REMEDY_PROPOSED, context)
            if t in (Trigger.SUBMIT_FOR_APPROVAL, Trigger.OFFER_TO_CUSTOMER)
        )

    assert route(offer_total=Decimal(500)) == (Trigger.OFFER_TO_CUSTOMER,)
    assert route(offer_total=Decimal("500.01")) == (Trigger.SUBMIT_FOR_APPROVAL,)
    assert route(offer_total=Decimal(50), account_flagged=True) == (Trigger.SUBMIT_FOR_APPROVAL,)
    assert route(offer_total=Decimal(50), policy_requires_approval=True) == (
        Trigger.SUBMIT_FOR_APPROVAL,
    )


def test_guards_on_time_need_a_current_time():
    stale = CaseContext(
        verification_due_at=BEFORE, auto_close_at=BEFORE, appeal_window_ends_at=AFTER
    )
    assert allowed_triggers(CaseState.AWAITING_MERCHANT, stale) == (
        Trigger.MERCHANT_ANSWERS,
        Trigger.RETRIAGE,
        Trigger.WITHDRAW,
    )
    assert allowed_triggers(CaseState.RESOLVED, stale) == ()


def test_after_mediation_the_only_way_on_from_negotiating_is_referral_or_withdrawal():
    context = CaseContext(negotiation_rounds=3, max_negotiation_rounds=2, mediation_held=True)
    assert allowed_triggers(CaseState.NEGOTIATING, context) == (
        Trigger.REFER_EXTERNALLY,
        Trigger.RETRIAGE,
        Trigger.WITHDRAW,
    )


# --- Triggers every active state shares ----------------------------------------------


@pytest.mark.parametrize("state", ACTIVE_STATES)
def test_withdrawal_ends_any_active_case_without_conditions(state: CaseState):
    transition = fire(state, Trigger.WITHDRAW, CaseContext())
    assert transition.next_state is CaseState.WITHDRAWN
    assert transition.events == (CaseEvent.WITHDRAWN,)


@pytest.mark.parametrize("state", ACTIVE_STATES)
def test_assignment_and_retriage_keep_the_state_and_say_so(state: CaseState):
    assigned = fire(state, Trigger.ASSIGN, CaseContext(assignee_id="agent-2"))
    retriaged = fire(state, Trigger.RETRIAGE, CaseContext())
    assert (assigned.next_state, assigned.events) == (state, (CaseEvent.ASSIGNED,))
    assert (retriaged.next_state, retriaged.events) == (state, (CaseEvent.RETRIAGED,))


@pytest.mark.parametrize("state", [CaseState.RESOLVED, CaseState.REJECTED, CaseState.CLOSED])
def test_a_decided_case_can_be_neither_withdrawn_nor_retriaged(state: CaseState):
    for trigger in (Trigger.WITHDRAW, Trigger.RETRIAGE, Trigger.ASSIGN):
        with pytest.raises(TransitionRefused):
            fire(state, trigger, satisfying(GUARDS[:4]))


def test_nothing_leaves_a_withdrawn_case():
    assert triggers_from(CaseState.WITHDRAWN) == ()


# --- Properties ----------------------------------------------------------------------

times = st.one_of(st.none(), st.sampled_from([BEFORE, NOW, AFTER]))
contexts = st.builds(
    CaseContext,
    now=times,
    assignee_id=st.sampled_from([None, "agent-1", "agent-2"]),
    reviewer_id=st.sampled_from([None, "agent-1", "supervisor-1"]),
    reason=st.sampled_from([None, "", " ", "because"]),
    responsibility_decided=st.booleans(),
    offer_total=st.decimals(0, 2000, places=2),
    approval_limit=st.decimals(0, 2000, places=2),
    account_flagged=st.booleans(),
    policy_requires_approval=st.booleans(),
    consent_recorded=st.booleans(),
    negotiation_rounds=st.integers(0, 4),
    max_negotiation_rounds=st.integers(1, 3),
    mediation_held=st.booleans(),
    task_count=st.integers(0, 3),
    tasks_done=st.integers(0, 3),
    verification_due_at=times,
    auto_close_at=times,
    appeal_window_ends_at=times,
    appealed_before=st.booleans(),
)


@given(st.sampled_from(list(CaseState)), st.sampled_from(list(Trigger)), contexts)
def test_fire_accepts_exactly_the_allowed_triggers(
    state: CaseState, trigger: Trigger, context: CaseContext
):
    allowed = allowed_triggers(state, context)
    if trigger in allowed:
        assert fire(state, trigger, context) is TRANSITIONS[(state, trigger)]
    else:
        with pytest.raises(TransitionRefused) as refused:
            fire(state, trigger, context)
        assert refused.value.allowed_triggers == allowed


@given(st.lists(st.tuples(st.integers(0, 50), contexts), max_size=40))
def test_any_walk_stays_in_known_states_and_every_step_emits_an_event(
    steps: list[tuple[int, CaseContext]],
):
    state = INITIAL_STATE
    for choice, context in steps:
        allowed = allowed_triggers(state, context)
        if not allowed:
            continue
        transition = fire(state, allowed[choice % len(allowed)], context)
        assert transition.events
        state = transition.next_state
        assert state in VISIBLE_STATE
