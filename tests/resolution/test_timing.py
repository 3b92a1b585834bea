"""Time budgets: elapsed or working time, on the business calendar."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resolution_service.domain.timing import TimeBudget, TimeUnit, working_day
from shared.calendar import TWENTY_FOUR_SEVEN, load_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
CN = load_calendar("cn")


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)


def test_a_working_day_is_the_calendars_working_hours_or_a_whole_day_when_all_time_counts():
    assert working_day(CN) == timedelta(hours=7, minutes=30)
    assert working_day(TWENTY_FOUR_SEVEN) == timedelta(days=1)


def test_three_working_days_from_friday_afternoon_count_the_make_up_sunday():
    # 2025-09-28 is a Sunday worked for National Day (调休); 1-8 October are off.
    due = TimeBudget(3, TimeUnit.WORKING_DAYS).due_at(local(2025, 9, 26, 15, 0), CN)
    assert due == local(2025, 9, 30, 15, 0)


def test_elapsed_budgets_ignore_the_business_calendar():
    start = local(2025, 9, 30, 10, 0)
    assert TimeBudget(24, TimeUnit.HOURS).due_at(start, CN) == local(2025, 10, 1, 10, 0)
    assert TimeBudget(7, TimeUnit.DAYS).due_at(start, CN) == local(2025, 10, 7, 10, 0)
    assert not TimeBudget(7, TimeUnit.DAYS).counts_business_time


def test_working_hours_skip_nights_and_lunch():
    assert TimeBudget(4, TimeUnit.WORKING_HOURS).due_at(local(2025, 6, 9, 10, 0), CN) == local(
        2025, 6, 9, 15, 30
    )


@pytest.mark.parametrize(
    ("text", "budget"),
    [
        ("2 working_days", TimeBudget(2, TimeUnit.WORKING_DAYS)),
        ("2 working days", TimeBudget(2, TimeUnit.WORKING_DAYS)),
        ("48 hours", TimeBudget(48, TimeUnit.HOURS)),
        (" 7 DAYS ", TimeBudget(7, TimeUnit.DAYS)),
    ],
)
def test_budgets_read_from_settings_text(text: str, budget: TimeBudget):
    assert TimeBudget.parse(text) == budget
    assert TimeBudget.parse(str(budget)) == budget


@pytest.mark.parametrize("text", ["", "2", "two days", "2 fortnights", "-1 days"])
def test_unreadable_budgets_are_refused_with_the_units_named(text: str):
    with pytest.raises(ValueError, match="working_days"):
        TimeBudget.parse(text)


def test_a_budget_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        TimeBudget(0, TimeUnit.HOURS)


@given(
    st.integers(1, 10),
    st.sampled_from(list(TimeUnit)),
    st.datetimes(datetime(2025, 1, 1), datetime(2026, 12, 1)),
)
def test_the_clock_and_the_due_time_agree(amount: int, unit: TimeUnit, start: datetime):
    budget = TimeBudget(amount, unit)
    begin = start.replace(tzinfo=SHANGHAI)
    clock = budget.clock(begin, CN)
    assert clock.due_at(budget.calendar(CN)) == budget.due_at(begin, CN)
    assert budget.due_at(begin, CN) > begin
