"""Business calendars and SLA clocks: the China data set, examples, and arithmetic laws."""

import json
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.calendar import (
    TWENTY_FOUR_SEVEN,
    BusinessCalendar,
    Calendar,
    CalendarDataError,
    Shift,
    SlaClock,
    SlaClockError,
    calendar_for,
    calendar_from_dict,
    load_calendar,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
CN = load_calendar("cn")
HOUR = timedelta(hours=1)
MICROSECOND = timedelta(microseconds=1)

# A calendar with a DST zone, a night shift running to midnight and one after it, and
# lunch breaks: the arithmetic must hold for more than the default data set.
BERLIN_NIGHTS = BusinessCalendar(
    name="berlin-nights",
    time_zone="Europe/Berlin",
    weekly_hours={
        0: [Shift.parse("08:00-12:00"), Shift.parse("13:00-17:00")],
        2: [Shift.parse("01:30-03:30"), Shift.parse("22:00-24:00")],
        3: [Shift.parse("00:00-02:30")],
        4: [Shift.parse("09:00-09:01")],
        # Sundays cross the DST changes (02:00-03:00 skipped in March, repeated in October).
        6: [Shift.parse("01:30-03:30")],
    },
    holidays=[date(2025, 12, 25), date(2026, 1, 1)],
    makeup_working_days=[date(2025, 12, 27)],
)
CALENDARS = [CN, BERLIN_NIGHTS]


def shanghai(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


def in_shanghai(at: datetime) -> datetime:
    return at.astimezone(SHANGHAI)


def days(first: str, last: str) -> list[date]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


HOLIDAYS_2025 = [
    *days("2025-01-01", "2025-01-01"),
    *days("2025-01-28", "2025-02-04"),
    *days("2025-04-04", "2025-04-06"),
    *days("2025-05-01", "2025-05-05"),
    *days("2025-05-31", "2025-06-02"),
    *days("2025-10-01", "2025-10-08"),
]
HOLIDAYS_2026 = [
    *days("2026-01-01", "2026-01-03"),
    *days("2026-02-15", "2026-02-23"),
    *days("2026-04-04", "2026-04-06"),
    *days("2026-05-01", "2026-05-05"),
    *days("2026-06-19", "2026-06-21"),
    *days("2026-09-25", "2026-09-27"),
    *days("2026-10-01", "2026-10-07"),
]
MAKEUP_DAYS = [
    date.fromisoformat(text)
    for text in (
        "2025-01-26",
        "2025-02-08",
        "2025-04-27",
        "2025-09-28",
        "2025-10-11",
        "2026-01-04",
        "2026-02-14",
        "2026-02-28",
        "2026-05-09",
        "2026-09-20",
        "2026-10-10",
    )
]


class TestChinaData:
    def test_lists_exactly_the_state_council_holidays_of_2025_and_2026(self):
        assert set(HOLIDAYS_2025) | set(HOLIDAYS_2026) == CN.holidays
        assert len(HOLIDAYS_2025) == 28
        assert len(HOLIDAYS_2026) == 33

    def test_lists_exactly_the_make_up_working_days_all_on_weekends(self):
        assert set(MAKEUP_DAYS) == CN.makeup_working_days
        assert all(day.weekday() >= 5 for day in MAKEUP_DAYS)

    @pytest.mark.parametrize("day", HOLIDAYS_2025 + HOLIDAYS_2026, ids=str)
    def test_a_public_holiday_has_no_working_hours(self, day: date):
        assert not CN.is_working_day(day)
        start = datetime.combine(day, datetime.min.time(), tzinfo=SHANGHAI)
        assert CN.business_time_between(start, start + timedelta(days=1)) == timedelta(0)

    @pytest.mark.parametrize("day", MAKEUP_DAYS, ids=str)
    def test_a_make_up_weekend_day_is_a_full_working_day(self, day: date):
        start = datetime.combine(day, datetime.min.time(), tzinfo=SHANGHAI)
        worked = CN.business_time_between(start, start + timedelta(days=1))
        assert worked == timedelta(hours=7, minutes=30)

    def test_ordinary_weeks_work_monday_to_friday_with_a_lunch_break(self):
        week = [CN.is_working_day(date(2025, 3, 3) + timedelta(days=n)) for n in range(7)]
        assert week == [True, True, True, True, True, False, False]
        assert CN.shifts_on(date(2025, 3, 3)) == (
            Shift.parse("09:00-12:00"),
            Shift.parse("13:30-18:00"),
        )

    def test_the_data_file_names_its_source(self):
        text = resources.files("shared.calendar.data").joinpath("cn.json").read_text("utf-8")
        data = json.loads(text)
        assert any("国务院办公厅关于2025年部分节假日安排的通知" in s for s in data["source"])
        assert any("国务院办公厅关于2026年部分节假日安排的通知" in s for s in data["source"])
        assert CN.time_zone.key == "Asia/Shanghai"
        assert CN.covers(date(2026, 12, 31))
        assert not CN.covers(date(2027, 1, 1))


class TestAddBusinessTime:
    def test_eight_hours_from_the_friday_before_spring_festival_2026_end_on_the_make_up_saturday(
        self,
    ):
        due = CN.add_business_time(shanghai(2026, 2, 13, 16), 8 * HOUR)
        assert in_shanghai(due) == shanghai(2026, 2, 14, 16, 30)

    def test_a_deadline_running_into_spring_festival_2026_continues_after_the_nine_days_off(self):
        due = CN.add_business_time(shanghai(2026, 2, 14, 17), 8 * HOUR)
        assert in_shanghai(due) == shanghai(2026, 2, 24, 17, 30)

    def test_a_deadline_over_national_day_2025_skips_october_1_to_8(self):
        due = CN.add_business_time(shanghai(2025, 9, 30, 17), 4 * HOUR)
        assert in_shanghai(due) == shanghai(2025, 10, 9, 12)

    def test_the_make_up_saturday_after_national_day_2025_counts(self):
        worked = CN.business_time_between(shanghai(2025, 10, 10, 18), shanghai(2025, 10, 13, 9))
        assert worked == timedelta(hours=7, minutes=30)

    def test_the_make_up_sunday_before_spring_festival_2025_counts(self):
        due = CN.add_business_time(shanghai(2025, 1, 24, 17), 2 * HOUR)
        assert in_shanghai(due) == shanghai(2025, 1, 26, 10)

    def test_a_start_outside_hours_waits_for_the_next_opening(self):
        due = CN.add_business_time(shanghai(2025, 3, 1, 10), HOUR)  # a Saturday
        assert in_shanghai(due) == shanghai(2025, 3, 3, 10)

    def test_the_lunch_break_does_not_count(self):
        due = CN.add_business_time(shanghai(2025, 3, 3, 11, 30), HOUR)
        assert in_shanghai(due) == shanghai(2025, 3, 3, 14)

    def test_a_budget_used_up_at_a_shift_end_is_due_at_that_end(self):
        due = CN.add_business_time(shanghai(2025, 3, 3, 9), 3 * HOUR)
        assert in_shanghai(due) == shanghai(2025, 3, 3, 12)

    def test_results_are_utc(self):
        due = CN.add_business_time(shanghai(2025, 3, 3, 9), HOUR)
        assert due.tzinfo is UTC
        assert due == datetime(2025, 3, 3, 2, tzinfo=UTC)

    def test_zero_duration_is_the_start_itself(self):
        start = shanghai(2025, 3, 1, 10)
        assert CN.add_business_time(start, timedelta(0)) == start

    def test_negative_durations_and_naive_datetimes_are_refused(self):
        with pytest.raises(ValueError, match="negative"):
            CN.add_business_time(shanghai(2025, 3, 3), -HOUR)
        with pytest.raises(ValueError, match="naive"):
            CN.add_business_time(datetime(2025, 3, 3, 9), HOUR)


class TestWorkingTime:
    @pytest.mark.parametrize(
        ("hh", "mm", "working"),
        [
            (8, 59, False),
            (9, 0, True),
            (11, 59, True),
            (12, 0, False),
            (13, 30, True),
            (18, 0, False),
        ],
    )
    def test_shift_starts_are_inside_and_shift_ends_outside(self, hh: int, mm: int, working: bool):
        assert CN.is_working_time(shanghai(2025, 3, 3, hh, mm)) is working

    def test_next_working_time_is_now_inside_hours_and_the_next_opening_outside(self):
        assert CN.next_working_time(shanghai(2025, 3, 3, 10)) == shanghai(2025, 3, 3, 10)
        assert CN.next_working_time(shanghai(2025, 3, 3, 12, 15)) == shanghai(2025, 3, 3, 13, 30)
        assert CN.next_working_time(shanghai(2025, 9, 30, 18)) == shanghai(2025, 10, 9, 9)

    def test_business_time_between_is_negative_when_reversed(self):
        a, b = shanghai(2025, 3, 3, 9), shanghai(2025, 3, 4, 9)
        assert CN.business_time_between(a, b) == timedelta(hours=7, minutes=30)
        assert CN.business_time_between(b, a) == -timedelta(hours=7, minutes=30)


class TestTwentyFourSeven:
    def test_counts_plain_elapsed_time(self):
        start = shanghai(2025, 10, 1)  # a holiday: irrelevant here
        assert TWENTY_FOUR_SEVEN.add_business_time(start, 8 * HOUR) == start + 8 * HOUR
        assert TWENTY_FOUR_SEVEN.business_time_between(start, start + 30 * HOUR) == 30 * HOUR
        assert TWENTY_FOUR_SEVEN.is_working_time(start)

    @pytest.mark.parametrize("name", [None, "", "24x7", "none", " 24X7 "])
    def test_is_what_an_unset_calendar_means(self, name: str | None):
        assert calendar_for(name) is TWENTY_FOUR_SEVEN

    def test_a_region_name_loads_its_business_calendar(self):
        assert calendar_for("CN") is CN


def cn_data(**changes: Any) -> dict[str, Any]:
    data = json.loads(
        resources.files("shared.calendar.data").joinpath("cn.json").read_text("utf-8")
    )
    data.update(changes)
    return data


class TestValidation:
    def test_the_shipped_data_round_trips_through_the_loader(self):
        assert calendar_from_dict(cn_data()).holidays == CN.holidays

    def test_overlapping_shifts_are_refused(self):
        hours = {"mon": ["09:00-12:30", "12:00-18:00"]}
        with pytest.raises(CalendarDataError, match="overlap"):
            calendar_from_dict(cn_data(working_hours=hours))

    @pytest.mark.parametrize("bad", ["2025/01/01", "20250101", "2025-02-30", "25-01-01", 20250101])
    def test_dates_in_any_format_but_yyyy_mm_dd_are_refused(self, bad: Any):
        holidays = [{"name": "x", "from": bad, "to": bad}]
        with pytest.raises(CalendarDataError, match="date"):
            calendar_from_dict(cn_data(holidays=holidays))

    @pytest.mark.parametrize(
        "bad", ["9:00-12:00", "09:00-25:00", "12:00-09:00", "09:00", "0900-1200"]
    )
    def test_malformed_or_backwards_shifts_are_refused(self, bad: str):
        with pytest.raises(CalendarDataError):
            calendar_from_dict(cn_data(working_hours={"mon": [bad]}))

    def test_a_date_both_holiday_and_make_up_day_is_refused(self):
        makeup = [{"date": "2025-10-01", "for": "contradiction"}]
        with pytest.raises(CalendarDataError, match="both"):
            calendar_from_dict(cn_data(makeup_working_days=makeup))

    def test_holidays_outside_the_declared_years_are_refused(self):
        with pytest.raises(CalendarDataError, match="outside"):
            calendar_from_dict(cn_data(years=[2025]))

    @pytest.mark.parametrize(
        "changes",
        [
            {"holiday": []},
            {"time_zone": "Asia/Atlantis"},
            {"working_hours": {"monday": ["09:00-18:00"]}},
            {"working_hours": {"sat": []}},
            {"holidays": [{"name": "x", "from": "2025-05-05", "to": "2025-05-01"}]},
        ],
        ids=["unknown key", "time zone", "weekday name", "no hours", "backwards holiday"],
    )
    def test_doubtful_data_is_refused(self, changes: dict[str, Any]):
        with pytest.raises(CalendarDataError):
            calendar_from_dict(cn_data(**changes))

    @pytest.mark.parametrize("region", ["atlantis", "../cn", "CN/"])
    def test_unknown_or_odd_regions_are_refused(self, region: str):
        with pytest.raises(CalendarDataError):
            load_calendar(region)


class TestSlaClock:
    def test_a_pause_moves_the_deadline_by_the_business_time_spent_paused(self):
        clock = SlaClock.start(8 * HOUR, shanghai(2025, 3, 3, 9))  # Monday
        assert in_shanghai(clock.due_at(CN)) == shanghai(2025, 3, 4, 9, 30)
        paused = clock.pause(shanghai(2025, 3, 3, 10))
        assert paused.is_paused
        assert paused.due_at(CN) is None
        resumed = paused.resume(shanghai(2025, 3, 4, 10))
        # Paused 7.5 business hours (Monday 10:00 to Tuesday 10:00): due Wednesday 09:30.
        assert in_shanghai(resumed.due_at(CN)) == shanghai(2025, 3, 5, 9, 30)
        at = shanghai(2025, 3, 4, 11)
        assert resumed.elapsed(at, CN) == 2 * HOUR
        assert resumed.remaining(at, CN) == 6 * HOUR
        assert resumed.fraction_used(at, CN) == 0.25

    def test_a_clock_that_ran_out_before_a_pause_keeps_its_past_deadline(self):
        clock = SlaClock.start(HOUR, shanghai(2025, 3, 3, 9)).pause(shanghai(2025, 3, 3, 11))
        assert in_shanghai(clock.due_at(CN)) == shanghai(2025, 3, 3, 10)
        assert clock.remaining(shanghai(2025, 3, 9), CN) == -HOUR

    def test_remaining_goes_negative_after_the_deadline(self):
        clock = SlaClock.start(HOUR, shanghai(2025, 3, 3, 9))
        assert clock.remaining(shanghai(2025, 3, 3, 11), CN) == -HOUR
        assert clock.fraction_used(shanghai(2025, 3, 3, 11), CN) == 2.0
        assert clock.elapsed(shanghai(2025, 3, 3, 8), CN) == timedelta(0)

    def test_the_same_clock_reads_in_plain_hours_on_the_24x7_calendar(self):
        clock = SlaClock.start(24 * HOUR, shanghai(2025, 10, 1))
        assert clock.due_at(TWENTY_FOUR_SEVEN) == shanghai(2025, 10, 2)
        # Oct 1-8 off; Oct 9, 10 and the make-up Saturday Oct 11 give 22.5 h; then Monday.
        assert in_shanghai(clock.due_at(CN)) == shanghai(2025, 10, 13, 10, 30)

    def test_impossible_operations_are_refused(self):
        clock = SlaClock.start(HOUR, shanghai(2025, 3, 3, 9))
        with pytest.raises(SlaClockError):
            clock.resume(shanghai(2025, 3, 3, 10))
        with pytest.raises(SlaClockError):
            clock.pause(shanghai(2025, 3, 3, 8))
        paused = clock.pause(shanghai(2025, 3, 3, 10))
        with pytest.raises(SlaClockError):
            paused.pause(shanghai(2025, 3, 3, 11))
        with pytest.raises(SlaClockError):
            paused.resume(shanghai(2025, 3, 3, 9, 30))
        with pytest.raises(SlaClockError):
            SlaClock.start(timedelta(0), shanghai(2025, 3, 3))

    def test_stores_as_a_dict_and_refuses_a_damaged_one(self):
        clock = (
            SlaClock.start(timedelta(hours=4, microseconds=7), shanghai(2025, 3, 3, 9))
            .pause(shanghai(2025, 3, 3, 10))
            .resume(shanghai(2025, 3, 4, 10))
            .pause(shanghai(2025, 3, 4, 11))
        )
        stored = json.loads(json.dumps(clock.to_dict()))
        assert SlaClock.from_dict(stored) == clock
        with pytest.raises(SlaClockError):
            SlaClock.from_dict({"budget_seconds": 60})
        with pytest.raises(SlaClockError):
            SlaClock.from_dict({**stored, "started_at": "yesterday"})


# Property tests: instants around the data set's years, durations up to ~10 working weeks.
instants = st.datetimes(
    min_value=datetime(2024, 12, 1), max_value=datetime(2027, 1, 31), timezones=st.just(UTC)
)
durations = st.timedeltas(min_value=MICROSECOND, max_value=timedelta(hours=400))
calendars = pytest.mark.parametrize("calendar", CALENDARS, ids=lambda c: c.name)
LAWS = settings(deadline=None, max_examples=150)


class TestCalendarLaws:
    @calendars
    @LAWS
    @given(start=instants, duration=durations)
    def test_adding_then_measuring_gives_back_the_duration(
        self, calendar: Calendar, start: datetime, duration: timedelta
    ):
        due = calendar.add_business_time(start, duration)
        assert calendar.business_time_between(start, due) == duration

    @calendars
    @LAWS
    @given(start=instants, duration=durations)
    def test_the_result_is_in_working_time_or_at_a_shift_end(
        self, calendar: Calendar, start: datetime, duration: timedelta
    ):
        due = calendar.add_business_time(start, duration)
        # The last microsecond counted was working time: `due` is inside a shift or at its end.
        assert calendar.is_working_time(due - MICROSECOND)
        assert due - start >= duration

    @calendars
    @LAWS
    @given(start=instants, first=durations, second=durations)
    def test_more_time_is_never_due_earlier(
        self, calendar: Calendar, start: datetime, first: timedelta, second: timedelta
    ):
        shorter, longer = sorted((first, second))
        assert calendar.add_business_time(start, shorter) <= calendar.add_business_time(
            start, longer
        )

    @calendars
    @LAWS
    @given(first_start=instants, second_start=instants, duration=durations)
    def test_a_later_start_is_never_due_earlier(
        self,
        calendar: Calendar,
        first_start: datetime,
        second_start: datetime,
        duration: timedelta,
    ):
        earlier, later = sorted((first_start, second_start))
        assert calendar.add_business_time(earlier, duration) <= calendar.add_business_time(
            later, duration
        )

    @calendars
    @LAWS
    @given(start=instants, first=durations, second=durations)
    def test_adding_in_two_steps_equals_adding_once(
        self, calendar: Calendar, start: datetime, first: timedelta, second: timedelta
    ):
        halfway = calendar.add_business_time(start, first)
        assert calendar.add_business_time(halfway, second) == calendar.add_business_time(
            start, first + second
        )

    @calendars
    @LAWS
    @given(points=st.lists(instants, min_size=3, max_size=3))
    def test_measured_time_adds_up_and_never_exceeds_elapsed_time(
        self, calendar: Calendar, points: list[datetime]
    ):
        a, b, c = sorted(points)
        ab, bc = calendar.business_time_between(a, b), calendar.business_time_between(b, c)
        assert ab + bc == calendar.business_time_between(a, c)
        assert timedelta(0) <= ab <= b - a

    @LAWS
    @given(start=instants, duration=durations)
    def test_no_business_time_is_counted_on_a_holiday_or_plain_weekend(
        self, start: datetime, duration: timedelta
    ):
        due = CN.add_business_time(start, duration)
        for period_start, period_end in CN.working_periods(start, due):
            day = period_start.astimezone(SHANGHAI).date()
            assert day == (period_end - MICROSECOND).astimezone(SHANGHAI).date()
            assert day not in CN.holidays
            assert day.weekday() < 5 or day in CN.makeup_working_days


class TestSlaClockLaws:
    @calendars
    @LAWS
    @given(
        start=instants,
        budget=durations,
        pause_after=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
        pause_for=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
    )
    def test_a_pause_and_resume_never_make_the_deadline_earlier(
        self,
        calendar: Calendar,
        start: datetime,
        budget: timedelta,
        pause_after: timedelta,
        pause_for: timedelta,
    ):
        clock = SlaClock.start(budget, start)
        paused_at, resumed_at = start + pause_after, start + pause_after + pause_for
        resumed = clock.pause(paused_at).resume(resumed_at)
        before, after = clock.due_at(calendar), resumed.due_at(calendar)
        assert before is not None
        assert after is not None
        assert after >= before
        # ...and it moves by exactly the business time spent paused, if it ran out after.
        if before > paused_at:
            paused_business = calendar.business_time_between(paused_at, resumed_at)
            assert calendar.business_time_between(before, after) == paused_business
        else:
            assert after == before

    @calendars
    @LAWS
    @given(start=instants, budget=durations)
    def test_at_its_deadline_a_running_clock_has_used_exactly_its_budget(
        self, calendar: Calendar, start: datetime, budget: timedelta
    ):
        clock = SlaClock.start(budget, start)
        due = clock.due_at(calendar)
        assert due is not None
        assert clock.remaining(due, calendar) == timedelta(0)
        assert clock.fraction_used(due, calendar) == 1.0

    @LAWS
    @given(
        start=instants,
        budget=durations,
        gaps=st.lists(
            st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=5)), max_size=6
        ),
    )
    def test_survives_storage_unchanged(
        self, start: datetime, budget: timedelta, gaps: list[timedelta]
    ):
        clock = SlaClock.start(budget, start)
        at = start
        for gap in gaps:
            at += gap
            clock = clock.resume(at) if clock.is_paused else clock.pause(at)
        assert SlaClock.from_dict(json.loads(json.dumps(clock.to_dict()))) == clock
