"""Execution tasks: planned per remedy, deadlines on the business calendar, a small state table."""

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import product
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resolution_service.domain.remedies import Party, Remedy, RemedyKind
from resolution_service.domain.tasks import (
    TASK_TRANSITIONS,
    TASKS_FOR_REMEDY,
    CouponDetails,
    InspectionResult,
    RefundDetails,
    ReturnDetails,
    Task,
    TaskDeadlines,
    TaskKind,
    TaskRefused,
    TaskState,
    TaskTrigger,
    all_tasks_done,
    fire_task,
    inspect_return,
    issue_coupon,
    missing_for_completion,
    overdue_tasks,
    plan_tasks,
    receive_return,
    record,
    release_waiting,
    rma_number,
)
from resolution_service.domain.timing import TimeBudget, TimeUnit
from shared.calendar import load_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
CN = load_calendar("cn")
ADDRESS = "上海市浦东新区退货仓 3 号门"


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)


def plan(remedies: list[Remedy], at: datetime = local(2025, 6, 9, 10, 0)) -> tuple[Task, ...]:
    return plan_tasks(
        remedies,
        complaint_number="202506-000123",
        planned_at=at,
        calendar=CN,
        return_address=ADDRESS,
    )


RETURN_AND_REFUND = Remedy(
    RemedyKind.RETURN_AND_REFUND,
    Decimal(299),
    paid_by=Party.MERCHANT,
    return_shipping_paid_by=Party.MERCHANT,
    refund_within_days_of_return=7,
)
COUPON = Remedy(RemedyKind.COUPON, Decimal(50), coupon_threshold=Decimal(0), coupon_valid_days=30)


def test_every_remedy_kind_has_a_plan():
    assert set(TASKS_FOR_REMEDY) == set(RemedyKind)
    assert TASKS_FOR_REMEDY[RemedyKind.REJECTION] == ()


def test_a_return_and_refund_becomes_a_return_then_a_refund_that_waits_for_it():
    back, refund, coupon, explanation = plan(
        [RETURN_AND_REFUND, COUPON, Remedy(RemedyKind.EXPLANATION, text="why")]
    )
    assert (back.key, back.kind, back.performer) == ("1-return", TaskKind.RETURN, Party.MERCHANT)
    assert back.details == ReturnDetails("RMA-202506-000123-01", ADDRESS, Party.MERCHANT)
    assert back.due_at(CN) == local(2025, 6, 16, 10, 0)
    assert (refund.key, refund.after, refund.clock) == ("1-refund", "1-return", None)
    assert refund.due_at(CN) is None
    assert refund.details == RefundDetails(Decimal("299.00"), "CNY")
    assert coupon.details == CouponDetails(Decimal("50.00"), "CNY", Decimal(0), 30)
    assert coupon.due_at(CN) == local(2025, 6, 10, 10, 0)
    assert explanation.kind is TaskKind.EXPLANATION
    assert {t.state for t in (back, refund, coupon, explanation)} == {TaskState.PENDING}


def test_a_refund_in_3_working_days_counts_the_make_up_sunday_and_skips_national_day():
    refund = Remedy(
        RemedyKind.REFUND, Decimal(299), earliest_business_days=1, within_business_days=3
    )
    [task] = plan([refund], at=local(2025, 9, 26, 15, 0))
    assert task.due_at(CN) == local(2025, 9, 30, 15, 0)
    [late] = plan([refund], at=local(2025, 9, 30, 15, 0))
    # 3 h on Tuesday, 1-8 October off, Thursday, Friday, then 4.5 h of the make-up Saturday.
    assert late.due_at(CN) == local(2025, 10, 11, 15, 0)


def test_a_reship_within_24_hours_runs_through_the_holiday():
    reship = Remedy(RemedyKind.RESHIP, Decimal(159), within_hours=24)
    [task] = plan([reship], at=local(2025, 9, 30, 20, 0))
    assert task.due_at(CN) == local(2025, 10, 1, 20, 0)


def test_an_exchange_returns_the_goods_first_and_two_returns_get_two_rma_numbers():
    exchange = Remedy(RemedyKind.EXCHANGE, Decimal(99), within_hours=48)
    tasks = plan([RETURN_AND_REFUND, exchange])
    assert [t.key for t in tasks] == ["1-return", "1-refund", "2-return", "2-exchange"]
    rmas = [t.details.rma_number for t in tasks if isinstance(t.details, ReturnDetails)]
    assert rmas == ["RMA-202506-000123-01", "RMA-202506-000123-02"]
    assert tasks[3].after == "2-return"
    assert tasks[3].budget == TimeBudget(48, TimeUnit.HOURS)


def test_a_rejection_carries_nothing_out():
    assert plan([Remedy(RemedyKind.REJECTION, text="outside the window")]) == ()


def test_rma_numbers_start_at_one():
    with pytest.raises(ValueError, match="start at 1"):
        rma_number("202506-000123", 0)


def test_deadlines_cover_every_task_kind():
    with pytest.raises(ValueError, match="no task budget"):
        TaskDeadlines(budgets={TaskKind.RETURN: TimeBudget(7, TimeUnit.DAYS)})


# --- The task table ------------------------------------------------------------------

MISSING = [pair for pair in product(TaskState, TaskTrigger) if pair not in TASK_TRANSITIONS]


def ready(task: Task) -> Task:
    """A task with every fact its completion needs."""
    facts: dict[str, object] = {
        TaskKind.RETURN: {},
        TaskKind.REFUND: {"reference": "PAY-1"},
        TaskKind.RESHIP: {"tracking_number": "SF100"},
        TaskKind.COUPON: {"code": "CP-1"},
        TaskKind.EXPLANATION: {"sent_via": "app"},
    }[task.kind]
    assert isinstance(facts, dict)
    return record(task, at=task.updated_at, **facts)


@pytest.mark.parametrize(("state", "trigger"), list(TASK_TRANSITIONS), ids=str)
def test_every_task_transition_is_allowed(state: TaskState, trigger: TaskTrigger):
    [task] = plan([Remedy(RemedyKind.RESHIP, within_hours=24)])
    task = replace(ready(task), state=state)
    moved = fire_task(task, trigger, at=local(2025, 6, 9, 11, 0), reason="courier lost it")
    assert moved.state is TASK_TRANSITIONS[(state, trigger)]


@pytest.mark.parametrize(("state", "trigger"), MISSING, ids=str)
def test_every_other_task_transition_is_refused(state: TaskState, trigger: TaskTrigger):
    [task] = plan([Remedy(RemedyKind.RESHIP, within_hours=24)])
    with pytest.raises(TaskRefused, match="not possible"):
        fire_task(replace(ready(task), state=state), trigger, at=task.updated_at, reason="x")


@pytest.mark.parametrize(
    ("remedy", "missing"),
    [
        (Remedy(RemedyKind.REFUND, Decimal(10)), ("reference",)),
        (Remedy(RemedyKind.RESHIP), ("tracking_number",)),
        (COUPON, ("code",)),
        (Remedy(RemedyKind.BALANCE_CREDIT, Decimal(10)), ("reference",)),
        (Remedy(RemedyKind.REPAIR), ("tracking_number",)),
        (Remedy(RemedyKind.APOLOGY, text="sorry"), ("sent_via",)),
    ],
)
def test_a_task_is_done_only_with_the_facts_that_prove_it(remedy: Remedy, missing: tuple[str, ...]):
    [task] = plan([remedy])
    assert missing_for_completion(task) == missing
    started = fire_task(task, TaskTrigger.START, at=task.updated_at)
    with pytest.raises(TaskRefused, match="still needs"):
        fire_task(started, TaskTrigger.COMPLETE, at=task.updated_at)


def test_a_failure_states_its_reason_and_can_be_retried():
    [task] = plan([Remedy(RemedyKind.REFUND, Decimal(10))])
    started = fire_task(task, TaskTrigger.START, at=task.updated_at)
    with pytest.raises(TaskRefused, match="reason"):
        fire_task(started, TaskTrigger.FAIL, at=task.updated_at)
    failed = fire_task(started, TaskTrigger.FAIL, at=task.updated_at, reason="card closed")
    assert (failed.state, failed.failure_reason) == (TaskState.FAILED, "card closed")
    retried = fire_task(failed, TaskTrigger.RETRY, at=task.updated_at)
    assert (retried.state, retried.failure_reason) == (TaskState.IN_PROGRESS, None)


# --- A return from label to refund ---------------------------------------------------


def test_a_return_is_tracked_received_inspected_and_releases_the_refund():
    back, refund = plan([RETURN_AND_REFUND], at=local(2025, 6, 9, 10, 0))
    back = fire_task(back, TaskTrigger.START, at=local(2025, 6, 9, 10, 0))
    back = record(back, at=local(2025, 6, 10, 9, 0), tracking_number="YT123")
    with pytest.raises(TaskRefused, match="arrived back"):
        inspect_return(back, result=InspectionResult.PASSED, note="", at=local(2025, 6, 10, 9, 0))
    # Received Friday 17:00: the merchant has 2 working days to inspect, so Tuesday 17:00.
    back = receive_return(back, at=local(2025, 6, 13, 17, 0), calendar=CN)
    assert back.due_at(CN) == local(2025, 6, 17, 17, 0)
    assert missing_for_completion(back) == ("inspection passed",)
    back = inspect_return(
        back, result=InspectionResult.PASSED, note="intact", at=local(2025, 6, 16, 10, 0)
    )
    back = fire_task(back, TaskTrigger.COMPLETE, at=local(2025, 6, 16, 10, 5))
    [_, refund] = release_waiting([back, refund], back, calendar=CN)
    # The law counts the 7 days from the merchant's receipt, not from the inspection.
    assert refund.due_at(CN) == local(2025, 6, 20, 17, 0)


def test_a_pickup_needs_no_tracking_number_from_the_customer():
    pickup = replace(RETURN_AND_REFUND, pickup=True, return_shipping_paid_by=Party.PLATFORM)
    back, _ = plan([pickup])
    assert isinstance(back.details, ReturnDetails)
    assert (back.details.pickup, back.details.shipping_paid_by) == (True, Party.PLATFORM)
    assert "tracking_number" not in missing_for_completion(back)


def test_a_failed_inspection_cannot_complete_the_return():
    back, _ = plan([RETURN_AND_REFUND])
    back = receive_return(
        record(back, at=back.updated_at, tracking_number="YT1"), at=back.updated_at, calendar=CN
    )
    back = inspect_return(
        back, result=InspectionResult.FAILED, note="used and scratched", at=back.updated_at
    )
    assert missing_for_completion(back) == ("inspection passed",)


def test_release_waits_for_the_task_to_be_done():
    back, refund = plan([RETURN_AND_REFUND])
    assert release_waiting([back, refund], back, calendar=CN) == (back, refund)


def test_a_coupon_expires_its_validity_after_issue():
    [task] = plan([COUPON])
    issued = issue_coupon(task, code="CP-8K2", at=local(2025, 6, 9, 12, 0))
    assert isinstance(issued.details, CouponDetails)
    assert issued.details.expires_at == local(2025, 7, 9, 12, 0)
    with pytest.raises(TaskRefused, match="issues no coupon"):
        issue_coupon(plan([Remedy(RemedyKind.RESHIP)])[0], code="x", at=task.updated_at)


def test_reports_name_only_facts_the_task_has_and_never_change_a_done_task():
    [task] = plan([Remedy(RemedyKind.RESHIP)])
    with pytest.raises(TaskRefused, match="has no refund_reference"):
        record(task, at=task.updated_at, refund_reference="x")
    done = replace(task, state=TaskState.DONE)
    with pytest.raises(TaskRefused, match="is done"):
        record(done, at=task.updated_at, tracking_number="SF1")
    with pytest.raises(TaskRefused, match="receives no goods"):
        receive_return(task, at=task.updated_at, calendar=CN)


def test_overdue_tasks_are_the_unfinished_ones_past_their_deadline():
    reship, coupon = plan([Remedy(RemedyKind.RESHIP, within_hours=24), COUPON])
    later = local(2025, 6, 10, 10, 0)
    assert overdue_tasks([reship, coupon], at=later - timedelta(seconds=1), calendar=CN) == ()
    assert overdue_tasks([reship, coupon], at=later, calendar=CN) == (reship, coupon)
    done = replace(reship, state=TaskState.DONE)
    assert overdue_tasks([done, coupon], at=later, calendar=CN) == (coupon,)


@given(st.lists(st.sampled_from(list(TaskState)), max_size=6))
def test_all_tasks_done_means_some_tasks_and_every_one_done(states: list[TaskState]):
    [template] = plan([COUPON])
    tasks = [replace(template, state=state) for state in states]
    assert all_tasks_done(tasks) is (bool(states) and set(states) == {TaskState.DONE})
