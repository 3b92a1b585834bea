"""Closure and appeal (结案与申诉): when a decided case closes, and how a decision is appealed.

A resolved or rejected case closes on its own some time after the decision (7 days by
default, configurable), long enough for the customer to react. The customer may appeal a
decision within 30 calendar days of it (Amazon's and eBay's window), even after the case
closed, once. A reviewer other than the person who decided (a higher-level review) either
upholds the decision, which closes the case for good, or reopens it for a new investigation.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from resolution_service.domain.lifecycle import Trigger
from resolution_service.domain.timing import TimeBudget, TimeUnit
from shared.calendar import TWENTY_FOUR_SEVEN, Calendar
from shared.clock import as_utc


class AppealRefused(Exception):  # noqa: N818 - a refusal, named as the decision it is
    """An appeal outside the window, a second appeal, or one without a reason."""


class ReviewRefused(Exception):  # noqa: N818 - a refusal, named as the decision it is
    """A review by the person who decided, or without a reason."""


DEFAULT_AUTO_CLOSE_AFTER = TimeBudget(7, TimeUnit.DAYS)
# Amazon and eBay accept appeals within 30 calendar days of a decision.
DEFAULT_APPEAL_WINDOW = TimeBudget(30, TimeUnit.DAYS)


@dataclass(frozen=True)
class ClosurePolicy:
    """How long after a decision a case closes, and how long it can be appealed."""

    auto_close_after: TimeBudget = DEFAULT_AUTO_CLOSE_AFTER
    appeal_window: TimeBudget = DEFAULT_APPEAL_WINDOW


class ReviewOutcome(StrEnum):
    """What a higher-level review decides."""

    UPHELD = "upheld"
    REOPENED = "reopened"


@dataclass(frozen=True)
class Appeal:
    """A customer's appeal (申诉) against a decision."""

    appealed_at: datetime
    reason: str


@dataclass(frozen=True)
class Review:
    """A higher-level review's decision on an appeal."""

    outcome: ReviewOutcome
    reviewer_id: str
    reason: str
    reviewed_at: datetime

    @property
    def trigger(self) -> Trigger:
        """The lifecycle trigger that carries this outcome."""
        return Trigger.UPHOLD_DECISION if self.outcome is ReviewOutcome.UPHELD else Trigger.REOPEN


def auto_close_at(
    decided_at: datetime,
    *,
    policy: ClosurePolicy = ClosurePolicy(),
    calendar: Calendar = TWENTY_FOUR_SEVEN,
) -> datetime:
    """When a case decided at `decided_at` closes on its own."""
    return policy.auto_close_after.due_at(decided_at, calendar)


def appeal_window_ends_at(
    decided_at: datetime,
    *,
    policy: ClosurePolicy = ClosurePolicy(),
    calendar: Calendar = TWENTY_FOUR_SEVEN,
) -> datetime:
    """The last instant a decision made at `decided_at` can be appealed."""
    return policy.appeal_window.due_at(decided_at, calendar)


def within_appeal_window(
    decided_at: datetime,
    at: datetime,
    *,
    policy: ClosurePolicy = ClosurePolicy(),
    calendar: Calendar = TWENTY_FOUR_SEVEN,
) -> bool:
    """True from the decision up to the end of the appeal window."""
    ends = appeal_window_ends_at(decided_at, policy=policy, calendar=calendar)
    return as_utc(decided_at) <= as_utc(at) <= ends


def file_appeal(
    *,
    decided_at: datetime,
    at: datetime,
    reason: str,
    appealed_before: bool,
    policy: ClosurePolicy = ClosurePolicy(),
    calendar: Calendar = TWENTY_FOUR_SEVEN,
) -> Appeal:
    """An appeal filed at `at`; AppealRefused says why it cannot be."""
    if appealed_before:
        raise AppealRefused("this decision was already appealed and reviewed")
    if not reason.strip():
        raise AppealRefused("an appeal needs the customer's reason")
    if not within_appeal_window(decided_at, at, policy=policy, calendar=calendar):
        ends = appeal_window_ends_at(decided_at, policy=policy, calendar=calendar)
        raise AppealRefused(
            f"the appeal window ({policy.appeal_window} from the decision) ended at "
            f"{ends.isoformat()}"
        )
    return Appeal(appealed_at=as_utc(at), reason=reason.strip())


def review_appeal(
    *,
    outcome: ReviewOutcome,
    reviewer_id: str,
    decided_by: str | None,
    reason: str,
    at: datetime,
) -> Review:
    """A review's decision; the person who decided may not review their own decision."""
    if decided_by is not None and reviewer_id == decided_by:
        raise ReviewRefused("an appeal is reviewed by someone other than the person who decided")
    if not reason.strip():
        raise ReviewRefused("a review states its reason")
    return Review(outcome=outcome, reviewer_id=reviewer_id, reason=reason.strip(), reviewed_at=at)
