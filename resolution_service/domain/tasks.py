"""Execution tasks (方案执行): one task per remedy step, each with a deadline in business time.

An accepted offer becomes tasks: a return (RMA number, address, who pays shipping, the
customer's tracking number, the merchant's inspection), a refund (to the original payment
method, with the payment reference), an exchange or a reship (the new tracking number), a
repair, a coupon (code, value, expiry), a balance credit, an apology or an explanation. A
refund after a return, and an exchange, wait for the return: their clocks start when the goods
arrive, because the law counts the refund's 7 days from the merchant's receipt.

A task moves pending -> in_progress -> done or failed (a failed task can be retried), by the
table `TASK_TRANSITIONS`; it is done only with the facts that prove it (a refund reference, a
tracking number, an inspection that passed). The case is resolved when every task is done.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from resolution_service.domain.remedies import ORIGINAL_PAYMENT_METHOD, Party, Remedy, RemedyKind
from resolution_service.domain.timing import TimeBudget, TimeUnit
from shared.calendar import Calendar, SlaClock
from shared.clock import as_utc


class TaskRefused(Exception):  # noqa: N818 - a refusal, named as the decision it is
    """A task change its state or kind does not allow."""


class TaskKind(StrEnum):
    """What a task carries out."""

    RETURN = "return"
    REFUND = "refund"
    EXCHANGE = "exchange"
    RESHIP = "reship"
    REPAIR = "repair"
    COUPON = "coupon"
    BALANCE_CREDIT = "balance_credit"
    APOLOGY = "apology"
    EXPLANATION = "explanation"


class TaskState(StrEnum):
    """Where a task stands."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    FAILED = "failed"


class TaskTrigger(StrEnum):
    """What moves a task."""

    START = "start"
    COMPLETE = "complete"
    FAIL = "fail"
    RETRY = "retry"


TASK_TRANSITIONS: Mapping[tuple[TaskState, TaskTrigger], TaskState] = MappingProxyType(
    {
        (TaskState.PENDING, TaskTrigger.START): TaskState.IN_PROGRESS,
        (TaskState.IN_PROGRESS, TaskTrigger.COMPLETE): TaskState.DONE,
        (TaskState.IN_PROGRESS, TaskTrigger.FAIL): TaskState.FAILED,
        (TaskState.FAILED, TaskTrigger.RETRY): TaskState.IN_PROGRESS,
    }
)


HOURS, DAYS, WORKING_DAYS = TimeUnit.HOURS, TimeUnit.DAYS, TimeUnit.WORKING_DAYS

DEFAULT_TASK_BUDGETS: Mapping[TaskKind, TimeBudget] = MappingProxyType(
    {
        # The customer sends the goods back within 7 days of the return being agreed.
        TaskKind.RETURN: TimeBudget(7, DAYS),
        # Refunds "in 1-3 working days" (the quality standard) unless the remedy says more.
        TaskKind.REFUND: TimeBudget(3, WORKING_DAYS),
        TaskKind.EXCHANGE: TimeBudget(48, HOURS),
        # Product quality: reship within 24 h.
        TaskKind.RESHIP: TimeBudget(24, HOURS),
        TaskKind.REPAIR: TimeBudget(15, DAYS),
        TaskKind.COUPON: TimeBudget(24, HOURS),
        TaskKind.BALANCE_CREDIT: TimeBudget(24, HOURS),
        TaskKind.APOLOGY: TimeBudget(24, HOURS),
        TaskKind.EXPLANATION: TimeBudget(24, HOURS),
    }
)
# The merchant inspects returned goods within 2 working days of receiving them.
DEFAULT_RETURN_INSPECTION = TimeBudget(2, WORKING_DAYS)


@dataclass(frozen=True)
class TaskDeadlines:
    """Default budgets per task; a remedy's own promise (24 h, 1-3 working days) wins."""

    budgets: Mapping[TaskKind, TimeBudget] = field(default_factory=lambda: DEFAULT_TASK_BUDGETS)
    return_inspection: TimeBudget = DEFAULT_RETURN_INSPECTION

    def __post_init__(self) -> None:
        missing = sorted(set(TaskKind) - set(self.budgets))
        if missing:
            raise ValueError(f"no task budget for {', '.join(missing)}")

    def __getitem__(self, kind: TaskKind) -> TimeBudget:
        return self.budgets[kind]


DEFAULT_TASK_DEADLINES = TaskDeadlines()


class InspectionResult(StrEnum):
    """The merchant's inspection of returned goods."""

    PASSED = "passed"
    FAILED = "failed"


@dataclass(frozen=True)
class Inspection:
    """What the merchant found when the goods came back."""

    result: InspectionResult
    note: str
    inspected_at: datetime


@dataclass(frozen=True)
class ReturnDetails:
    """A return (退货): RMA number, where to, who pays shipping, tracking, inspection."""

    rma_number: str
    address: str
    shipping_paid_by: Party
    pickup: bool = False
    tracking_number: str | None = None
    received_at: datetime | None = None
    inspection: Inspection | None = None


@dataclass(frozen=True)
class RefundDetails:
    """A refund (退款) to the original payment method, with the payment reference."""

    amount: Decimal
    currency: str
    method: str = ORIGINAL_PAYMENT_METHOD
    reference: str | None = None


@dataclass(frozen=True)
class ShipmentDetails:
    """An exchange or reship (换货/补发): the new parcel's tracking number."""

    tracking_number: str | None = None


@dataclass(frozen=True)
class RepairDetails:
    """A repair (维修): who repairs, the parcel's tracking number, what was done."""

    repairer: Party
    tracking_number: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class CouponDetails:
    """A coupon (优惠券): value, spending threshold, validity, and once issued its code."""

    value: Decimal
    currency: str
    threshold: Decimal
    valid_days: int
    code: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class CreditDetails:
    """A balance credit (余额补偿) with its payment reference."""

    amount: Decimal
    currency: str
    reference: str | None = None


@dataclass(frozen=True)
class MessageDetails:
    """An apology or explanation: the words sent and how."""

    text: str | None = None
    sent_via: str | None = None


TaskDetails = (
    ReturnDetails
    | RefundDetails
    | ShipmentDetails
    | RepairDetails
    | CouponDetails
    | CreditDetails
    | MessageDetails
)


@dataclass(frozen=True)
class Task:
    """One step of carrying out the accepted remedies."""

    key: str
    kind: TaskKind
    remedy_index: int
    performer: Party
    state: TaskState
    details: TaskDetails
    budget: TimeBudget
    # None while the task waits for the task named in `after`.
    clock: SlaClock | None
    updated_at: datetime
    after: str | None = None
    failure_reason: str | None = None

    def due_at(self, calendar: Calendar) -> datetime | None:
        """When the task is due (None while it waits for another task)."""
        if self.clock is None:
            return None
        return self.clock.due_at(self.budget.calendar(calendar))

    def is_overdue(self, at: datetime, calendar: Calendar) -> bool:
        """True when an unfinished task is past its deadline."""
        due = self.due_at(calendar)
        return self.state is not TaskState.DONE and due is not None and as_utc(at) >= due


def rma_number(complaint_number: str, sequence: int) -> str:
    """The return authorisation number of a complaint's n-th return: RMA-202405-000123-01."""
    if sequence < 1:
        raise ValueError("RMA sequences start at 1")
    return f"RMA-{complaint_number}-{sequence:02d}"


# The tasks each remedy becomes, in order; a later task waits for the one before it (the
# refund and the exchange wait for the goods to come back).
TASKS_FOR_REMEDY: Mapping[RemedyKind, tuple[TaskKind, ...]] = MappingProxyType(
    {
        RemedyKind.RETURN_AND_REFUND: (TaskKind.RETURN, TaskKind.REFUND),
        RemedyKind.EXCHANGE: (TaskKind.RETURN, TaskKind.EXCHANGE),
        RemedyKind.REFUND: (TaskKind.REFUND,),
        RemedyKind.RESHIP: (TaskKind.RESHIP,),
        RemedyKind.REPAIR: (TaskKind.REPAIR,),
        RemedyKind.COUPON: (TaskKind.COUPON,),
        RemedyKind.BALANCE_CREDIT: (TaskKind.BALANCE_CREDIT,),
        RemedyKind.APOLOGY: (TaskKind.APOLOGY,),
        RemedyKind.EXPLANATION: (TaskKind.EXPLANATION,),
        # A rejection carries nothing out: its explanation went with the decision.
        RemedyKind.REJECTION: (),
    }
)
# Who carries each task out (the merchant's systems report progress through their API).
PERFORMER: Mapping[TaskKind, Party] = MappingProxyType(
    {
        TaskKind.RETURN: Party.MERCHANT,
        TaskKind.REFUND: Party.MERCHANT,
        TaskKind.EXCHANGE: Party.MERCHANT,
        TaskKind.RESHIP: Party.MERCHANT,
        TaskKind.REPAIR: Party.MERCHANT,
        TaskKind.COUPON: Party.PLATFORM,
        TaskKind.BALANCE_CREDIT: Party.PLATFORM,
        TaskKind.APOLOGY: Party.PLATFORM,
        TaskKind.EXPLANATION: Party.PLATFORM,
    }
)


def _budget(kind: TaskKind, remedy: Remedy, deadlines: TaskDeadlines) -> TimeBudget:
    """The remedy's own promise for this task, else the default."""
    if kind is TaskKind.RETURN:
        return deadlines[kind]
    if kind is TaskKind.REFUND and remedy.refund_within_days_of_return is not None:
        # The law counts the refund's days from the merchant's receipt of the goods.
        return TimeBudget(remedy.refund_within_days_of_return, TimeUnit.DAYS)
    if remedy.within_hours is not None:
        return TimeBudget(remedy.within_hours, TimeUnit.HOURS)
    if remedy.within_business_days is not None:
        return TimeBudget(remedy.within_business_days, TimeUnit.WORKING_DAYS)
    return deadlines[kind]


def _details(kind: TaskKind, remedy: Remedy, *, rma: str, return_address: str) -> TaskDetails:
    if kind is TaskKind.RETURN:
        shipping = remedy.return_shipping_paid_by or remedy.paid_by or Party.MERCHANT
        return ReturnDetails(rma, return_address, shipping, remedy.pickup)
    if kind is TaskKind.REFUND:
        return RefundDetails(remedy.amount, remedy.currency)
    if kind in (TaskKind.EXCHANGE, TaskKind.RESHIP):
        return ShipmentDetails()
    if kind is TaskKind.REPAIR:
        return RepairDetails(remedy.paid_by or Party.MERCHANT)
    if kind is TaskKind.COUPON:
        threshold = remedy.coupon_threshold or Decimal(0)
        return CouponDetails(
            remedy.amount, remedy.currency, threshold, remedy.coupon_valid_days or 30
        )
    if kind is TaskKind.BALANCE_CREDIT:
        return CreditDetails(remedy.amount, remedy.currency)
    return MessageDetails(remedy.text)


def plan_tasks(
    remedies: Sequence[Remedy],
    *,
    complaint_number: str,
    planned_at: datetime,
    calendar: Calendar,
    return_address: str,
    deadlines: TaskDeadlines = DEFAULT_TASK_DEADLINES,
) -> tuple[Task, ...]:
    """The tasks that carry out accepted remedies, with their clocks started at `planned_at`."""
    tasks: list[Task] = []
    returns = 0
    for index, remedy in enumerate(remedies):
        previous: str | None = None
        for kind in TASKS_FOR_REMEDY[remedy.kind]:
            if kind is TaskKind.RETURN:
                returns += 1
            budget = _budget(kind, remedy, deadlines)
            key = f"{index + 1}-{kind}"
            tasks.append(
                Task(
                    key=key,
                    kind=kind,
                    remedy_index=index,
                    performer=PERFORMER[kind],
                    state=TaskState.PENDING,
                    details=_details(
                        kind,
                        remedy,
                        rma=rma_number(complaint_number, max(returns, 1)),
                        return_address=return_address,
                    ),
                    budget=budget,
                    # A task waiting for another starts its clock when that one is done.
                    clock=None if previous else budget.clock(planned_at, calendar),
                    updated_at=as_utc(planned_at),
                    after=previous,
                )
            )
            previous = key
    return tuple(tasks)


# --- Moving a task -------------------------------------------------------------------


def missing_for_completion(task: Task) -> tuple[str, ...]:
    """The facts a task still needs before it can be done."""
    details = task.details
    missing: list[str] = []
    if isinstance(details, ReturnDetails):
        if details.tracking_number is None and not details.pickup:
            missing.append("tracking_number")
        if details.received_at is None:
            missing.append("received_at")
        if details.inspection is None or details.inspection.result is not InspectionResult.PASSED:
            missing.append("inspection passed")
    elif isinstance(details, RefundDetails | CreditDetails):
        if details.reference is None:
            missing.append("reference")
    elif isinstance(details, ShipmentDetails | RepairDetails):
        if details.tracking_number is None:
            missing.append("tracking_number")
    elif isinstance(details, CouponDetails):
        if details.code is None:
            missing.append("code")
    elif details.sent_via is None:
        missing.append("sent_via")
    return tuple(missing)


def fire_task(task: Task, trigger: TaskTrigger, *, at: datetime, reason: str = "") -> Task:
    """The task after `trigger`; TaskRefused when the table or the task's facts do not allow it."""
    next_state = TASK_TRANSITIONS.get((task.state, trigger))
    if next_state is None:
        allowed = [t for (state, t) in TASK_TRANSITIONS if state is task.state]
        listed = ", ".join(allowed) or "none"
        raise TaskRefused(f"{trigger} is not possible for a {task.state} task; allowed: {listed}")
    if trigger is TaskTrigger.COMPLETE:
        missing = missing_for_completion(task)
        if missing:
            raise TaskRefused(f"the {task.kind} task still needs {', '.join(missing)}")
    if trigger is TaskTrigger.FAIL and not reason.strip():
        raise TaskRefused("a failure states its reason")
    return replace(
        task,
        state=next_state,
        updated_at=as_utc(at),
        failure_reason=reason.strip() if trigger is TaskTrigger.FAIL else None,
    )


def record(task: Task, *, at: datetime, **facts: object) -> Task:
    """A progress report (a tracking number, a reference, a coupon code) on an open task."""
    if task.state is TaskState.DONE:
        raise TaskRefused(f"the {task.kind} task is done")
    known = {details_field.name for details_field in fields(task.details)}
    unknown = sorted(set(facts) - known)
    if unknown:
        raise TaskRefused(f"a {task.kind} task has no {', '.join(unknown)}")
    details = replace(task.details, **facts)  # type: ignore[arg-type]
    return replace(task, details=details, updated_at=as_utc(at))


def receive_return(
    task: Task,
    *,
    at: datetime,
    calendar: Calendar,
    deadlines: TaskDeadlines = DEFAULT_TASK_DEADLINES,
) -> Task:
    """The goods arrived back: the clock now runs for the merchant's inspection."""
    if not isinstance(task.details, ReturnDetails):
        raise TaskRefused(f"a {task.kind} task receives no goods")
    received = record(task, at=at, received_at=as_utc(at))
    return replace(
        received,
        budget=deadlines.return_inspection,
        clock=deadlines.return_inspection.clock(at, calendar),
    )


def inspect_return(task: Task, *, result: InspectionResult, note: str, at: datetime) -> Task:
    """The merchant's inspection of the returned goods."""
    if not isinstance(task.details, ReturnDetails) or task.details.received_at is None:
        raise TaskRefused("only goods that arrived back can be inspected")
    return record(task, at=at, inspection=Inspection(result, note, as_utc(at)))


def issue_coupon(task: Task, *, code: str, at: datetime) -> Task:
    """The coupon was issued: its code, and its expiry counted from now."""
    if not isinstance(task.details, CouponDetails):
        raise TaskRefused(f"a {task.kind} task issues no coupon")
    expires = as_utc(at) + timedelta(days=task.details.valid_days)
    return record(task, at=at, code=code, expires_at=expires)


def release_waiting(tasks: Iterable[Task], done: Task, *, calendar: Calendar) -> tuple[Task, ...]:
    """Tasks waiting for `done` get their clocks, counted from when the goods arrived."""
    if done.state is not TaskState.DONE:
        return tuple(tasks)
    arrived = done.details.received_at if isinstance(done.details, ReturnDetails) else None
    start = arrived or done.updated_at
    return tuple(
        replace(task, clock=task.budget.clock(start, calendar))
        if task.after == done.key and task.clock is None
        else task
        for task in tasks
    )


def all_tasks_done(tasks: Iterable[Task]) -> bool:
    """True when there is at least one task and every task is done."""
    states = [task.state for task in tasks]
    return bool(states) and all(state is TaskState.DONE for state in states)


def overdue_tasks(tasks: Iterable[Task], *, at: datetime, calendar: Calendar) -> tuple[Task, ...]:
    """Unfinished tasks past their deadline at `at`."""
    return tuple(task for task in tasks if task.is_overdue(at, calendar))
