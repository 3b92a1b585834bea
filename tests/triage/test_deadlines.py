"""Deadlines: budgets per priority and channel, business calendar, pauses, the 80% warning."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.calendar import TWENTY_FOUR_SEVEN, load_calendar
from shared.events.vocabulary import Priority
from triage_service.domain.deadlines import (
    DeadlinePolicy,
    DeadlineState,
    compute_deadlines,
    deadline,
    first_response_budget,
    resolution_budget,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
CN = load_calendar("cn")
HOUR = timedelta(hours=1)


def shanghai(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


class TestBudgets:
    @pytest.mark.parametrize(
        ("priority", "hours"), [("urgent", 2), ("important", 24), ("general", 48)]
    )
    def test_first_response_defaults(self, priority: str, hours: int):
        assert first_response_budget(priority, "app") == timedelta(hours=hours)

    @pytest.mark.parametrize(
        ("priority", "days"), [("urgent", 1), ("important", 3), ("general", 7)]
    )
    def test_resolution_defaults(self, priority: str, days: int):
        assert resolution_budget(priority) == timedelta(days=days)

    @pytest.mark.parametrize("channel", ["chat", "hotline", "social"])
    def test_live_and_public_channels_cap_the_first_response(self, channel: str):
        assert first_response_budget("general", channel) == 24 * HOUR
        assert first_response_budget("urgent", channel) == 2 * HOUR

    def test_an_unknown_priority_is_worked_as_general(self):
        assert first_response_budget("whenever", "app") == 48 * HOUR

    def test_a_policy_must_budget_every_priority(self):
        with pytest.raises(ValueError, match="no budget"):
            DeadlinePolicy(first_response={Priority.URGENT: HOUR})


class TestWithoutBusinessCalendar:
    def test_deadlines_are_plain_elapsed_time(self):
        received = datetime(2026, 3, 6, 18, 0, tzinfo=UTC)
        deadlines = compute_deadlines(priority="general", channel="app", received_at=received)
        assert deadlines.first_response.due_at == received + 48 * HOUR
        assert deadlines.first_response.warn_at == received + 48 * HOUR * 0.8
        assert deadlines.resolution.due_at == received + timedelta(days=7)


class TestWithBusinessCalendar:
    def test_a_friday_evening_complaint_counts_from_monday_morning(self):
        # Friday 2026-03-06 20:00 Shanghai, after hours: 24 business hours are three working
        # days of nine hours... so the clock runs Monday to Wednesday.
        received = shanghai(2026, 3, 6, 20, 0)
        deadlines = compute_deadlines(
            priority="important", channel="app", received_at=received, calendar=CN
        )
        due = deadlines.first_response.due_at
        assert due is not None
        assert CN.business_time_between(received, due) == 24 * HOUR
        assert due.astimezone(SHANGHAI).weekday() >= 1  # not before Tuesday

    def test_urgent_ignores_the_calendar(self):
        received = shanghai(2026, 3, 6, 20, 0)
        deadlines = compute_deadlines(
            priority="urgent", channel="app", received_at=received, calendar=CN
        )
        assert deadlines.first_response.due_at == received.astimezone(UTC) + 2 * HOUR
        assert deadlines.first_response.calendar is TWENTY_FOUR_SEVEN


class TestPauses:
    def test_a_closed_pause_shifts_the_deadline_by_its_length(self):
        received = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
        pause = (received + HOUR, received + 4 * HOUR)
        deadlines = compute_deadlines(
            priority="general", channel="app", received_at=received, pauses=[pause]
        )
        assert deadlines.first_response.due_at == received + 48 * HOUR + 3 * HOUR

    def test_an_open_pause_has_no_deadline_and_reads_paused(self):
        received = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
        deadlines = compute_deadlines(
            priority="general",
            channel="app",
            received_at=received,
            pauses=[(received + HOUR, None)],
        )
        assert deadlines.first_response.due_at is None
        assert deadlines.first_response.state(received + 100 * HOUR) is DeadlineState.PAUSED

    def test_pauses_in_business_time_shift_by_the_business_time_paused(self):
        received = shanghai(2026, 3, 2, 9, 0)  # a Monday morning
        pause = (shanghai(2026, 3, 2, 10, 0), shanghai(2026, 3, 2, 12, 0))
        paused = compute_deadlines(
            priority="general", channel="app", received_at=received, calendar=CN, pauses=[pause]
        ).first_response.due_at
        plain = compute_deadlines(
            priority="general", channel="app", received_at=received, calendar=CN
        ).first_response.due_at
        assert paused is not None
        assert plain is not None
        assert CN.business_time_between(plain, paused) == CN.business_time_between(*pause)


class TestStates:
    received = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)

    def test_on_track_then_warning_at_eighty_percent_then_breached(self):
        sla = deadline(10 * HOUR, started_at=self.received)
        assert sla.state(self.received + 7 * HOUR) is DeadlineState.ON_TRACK
        assert sla.state(self.received + 8 * HOUR) is DeadlineState.WARNING
        assert sla.state(self.received + 10 * HOUR) is DeadlineState.BREACHED

    def test_a_clock_that_ran_out_before_its_pause_is_breached(self):
        sla = deadline(HOUR, started_at=self.received, pauses=[(self.received + 2 * HOUR, None)])
        assert sla.due_at == self.received + HOUR
        assert sla.state(self.received + 3 * HOUR) is DeadlineState.BREACHED


@settings(max_examples=50, deadline=None)
@given(
    priority=st.sampled_from(list(Priority)),
    channel=st.sampled_from(["app", "chat", "social", "store"]),
    start=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 1), timezones=st.just(UTC)
    ),
    paused_hours=st.integers(min_value=0, max_value=200),
)
def test_warning_comes_before_the_deadline_and_pauses_only_postpone(
    priority: Priority, channel: str, start: datetime, paused_hours: int
):
    plain = compute_deadlines(priority=priority, channel=channel, received_at=start, calendar=CN)
    pause = (start + HOUR, start + HOUR + timedelta(hours=paused_hours))
    paused = compute_deadlines(
        priority=priority, channel=channel, received_at=start, calendar=CN, pauses=[pause]
    )
    for sla in (plain.first_response, plain.resolution):
        assert sla.warn_at is not None
        assert sla.due_at is not None
        assert start <= sla.warn_at <= sla.due_at
    assert plain.first_response.due_at is not None
    assert paused.first_response.due_at is not None
    assert paused.first_response.due_at >= plain.first_response.due_at
