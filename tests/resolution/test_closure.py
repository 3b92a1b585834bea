"""Closure and appeal: auto-close after a decision, a 30-day window, an independent review."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resolution_service.domain.closure import (
    AppealRefused,
    ClosurePolicy,
    ReviewOutcome,
    ReviewRefused,
    appeal_window_ends_at,
    auto_close_at,
    file_appeal,
    review_appeal,
    within_appeal_window,
)
from resolution_service.domain.lifecycle import Trigger
from resolution_service.domain.timing import TimeBudget, TimeUnit

DECIDED = datetime(2025, 6, 10, 9, 0, tzinfo=UTC)


def test_a_decided_case_closes_seven_days_later_by_default():
    assert auto_close_at(DECIDED) == DECIDED + timedelta(days=7)
    three_days = ClosurePolicy(auto_close_after=TimeBudget(3, TimeUnit.DAYS))
    assert auto_close_at(DECIDED, policy=three_days) == DECIDED + timedelta(days=3)


def test_the_appeal_window_is_thirty_calendar_days_from_the_decision():
    ends = appeal_window_ends_at(DECIDED)
    assert ends == DECIDED + timedelta(days=30)
    assert within_appeal_window(DECIDED, ends)
    assert not within_appeal_window(DECIDED, ends + timedelta(seconds=1))
    assert not within_appeal_window(DECIDED, DECIDED - timedelta(seconds=1))


def test_an_appeal_after_closing_but_inside_the_window_is_accepted():
    at = auto_close_at(DECIDED) + timedelta(days=1)
    appeal = file_appeal(
        decided_at=DECIDED, at=at, reason=" 补发的还是坏的 ", appealed_before=False
    )
    assert (appeal.appealed_at, appeal.reason) == (at, "补发的还是坏的")


@pytest.mark.parametrize(
    ("at", "reason", "appealed_before", "message"),
    [
        (DECIDED + timedelta(days=31), "still broken", False, "appeal window"),
        (DECIDED + timedelta(days=1), "  ", False, "reason"),
        (DECIDED + timedelta(days=1), "again", True, "already appealed"),
    ],
)
def test_appeals_are_refused_with_the_reason(
    at: datetime, reason: str, appealed_before: bool, message: str
):
    with pytest.raises(AppealRefused, match=message):
        file_appeal(decided_at=DECIDED, at=at, reason=reason, appealed_before=appealed_before)


def test_a_review_is_by_someone_else_and_maps_to_the_lifecycle():
    at = DECIDED + timedelta(days=3)
    with pytest.raises(ReviewRefused, match="someone other"):
        review_appeal(
            outcome=ReviewOutcome.UPHELD, reviewer_id="a1", decided_by="a1", reason="ok", at=at
        )
    with pytest.raises(ReviewRefused, match="reason"):
        review_appeal(
            outcome=ReviewOutcome.UPHELD, reviewer_id="s1", decided_by="a1", reason="", at=at
        )
    upheld = review_appeal(
        outcome=ReviewOutcome.UPHELD, reviewer_id="s1", decided_by="a1", reason="fair", at=at
    )
    reopened = review_appeal(
        outcome=ReviewOutcome.REOPENED, reviewer_id="s1", decided_by="a1", reason="new photo", at=at
    )
    assert (upheld.trigger, reopened.trigger) == (Trigger.UPHOLD_DECISION, Trigger.REOPEN)


@given(st.integers(0, 60 * 24 * 60))
def test_an_appeal_is_accepted_exactly_inside_the_window(minutes: int):
    at = DECIDED + timedelta(minutes=minutes)
    inside = minutes <= 30 * 24 * 60
    assert within_appeal_window(DECIDED, at) is inside
    if inside:
        file_appeal(decided_at=DECIDED, at=at, reason="why", appealed_before=False)
    else:
        with pytest.raises(AppealRefused):
            file_appeal(decided_at=DECIDED, at=at, reason="why", appealed_before=False)
