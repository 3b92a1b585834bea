"""Business calendars: when the clock of a service promise runs, and how far it has run."""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Protocol
from zoneinfo import ZoneInfo

from shared.clock import as_utc

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY = timedelta(days=1)


class CalendarDataError(ValueError):
    """Calendar data that cannot be trusted: overlapping shifts, bad dates, contradictions."""


@dataclass(frozen=True, order=True)
class Shift:
    """One stretch of working time within a local day, as offsets from local midnight."""

    start: timedelta
    end: timedelta

    def __post_init__(self) -> None:
        if not timedelta(0) <= self.start < self.end <= _DAY:
            raise CalendarDataError(f"shift {self} must satisfy 00:00 <= start < end <= 24:00")

    @classmethod
    def parse(cls, text: str) -> "Shift":
        """Parses `HH:MM-HH:MM` (`24:00` allowed as an end)."""
        start, sep, end = text.partition("-")
        if not sep:
            raise CalendarDataError(f"shift {text!r} is not HH:MM-HH:MM")
        return cls(_parse_clock_time(start.strip()), _parse_clock_time(end.strip()))

    @classmethod
    def between(cls, start: time, end: time) -> "Shift":
        """A shift from one local time of day to a later one on the same day."""
        return cls(_offset(start), _offset(end))

    def __str__(self) -> str:
        return f"{_format_offset(self.start)}-{_format_offset(self.end)}"

    def __repr__(self) -> str:
        return f"Shift.parse({str(self)!r})"


def _parse_clock_time(text: str) -> timedelta:
    hours, sep, minutes = text.partition(":")
    if not (sep and len(hours) == 2 and len(minutes) == 2 and hours.isdigit()):
        raise CalendarDataError(f"time {text!r} is not HH:MM")
    if not minutes.isdigit() or int(minutes) > 59 or int(hours) > 24:
        raise CalendarDataError(f"time {text!r} is not HH:MM")
    value = timedelta(hours=int(hours), minutes=int(minutes))
    if value > _DAY:
        raise CalendarDataError(f"time {text!r} is after 24:00")
    return value


def _offset(at: time) -> timedelta:
    return timedelta(hours=at.hour, minutes=at.minute, seconds=at.second)


def _format_offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _checked_shifts(shifts: Sequence[Shift], where: str) -> tuple[Shift, ...]:
    ordered = tuple(sorted(shifts))
    for earlier, later in pairwise(ordered):
        if later.start < earlier.end:
            raise CalendarDataError(f"{where}: shifts {earlier} and {later} overlap")
    return ordered


class Calendar(Protocol):
    """What SLA arithmetic needs from a calendar; every datetime is aware, results are UTC."""

    @property
    def name(self) -> str:
        """A short name for logs and stored clocks ("cn", "24x7")."""
        ...

    def is_working_time(self, at: datetime) -> bool:
        """True when a business clock runs at `at`."""
        ...

    def next_working_time(self, at: datetime) -> datetime:
        """`at` itself when it is working time, else the start of the next working period."""
        ...

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which `duration` of working time has passed since `start`."""
        ...

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time from `start` to `end` (negative when `end` is earlier)."""
        ...


class TwentyFourSeven:
    """The calendar when business time is not configured: every instant counts."""

    name = "24x7"

    def is_working_time(self, at: datetime) -> bool:
        """Always true."""
        as_utc(at)
        return True

    def next_working_time(self, at: datetime) -> datetime:
        """`at` itself (in UTC)."""
        return as_utc(at)

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """Plain addition."""
        if duration < timedelta(0):
            raise ValueError("duration must not be negative")
        return as_utc(start) + duration

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Plain elapsed time."""
        return as_utc(end) - as_utc(start)


TWENTY_FOUR_SEVEN = TwentyFourSeven()


class BusinessCalendar:
    """Working hours per weekday in a time zone, minus holidays, plus make-up working days.

    Business time is real elapsed time inside working periods, so a DST jump inside a
    shift shortens or lengthens it like a wall clock would.
    """

    def __init__(
        self,
        *,
        name: str,
        time_zone: str | ZoneInfo,
        weekly_hours: Mapping[int, Sequence[Shift]],
        holidays: Iterable[date] = (),
        makeup_working_days: Iterable[date] = (),
        makeup_day_hours: Sequence[Shift] | None = None,
        covered_years: Iterable[int] = (),
    ) -> None:
        self._name = name
        self.time_zone = time_zone if isinstance(time_zone, ZoneInfo) else ZoneInfo(time_zone)
        unknown = set(weekly_hours) - set(range(7))
        if unknown:
            raise CalendarDataError(f"weekdays must be 0 (Monday) to 6 (Sunday), got {unknown}")
        self.weekly_hours: tuple[tuple[Shift, ...], ...] = tuple(
            _checked_shifts(weekly_hours.get(day, ()), WEEKDAY_NAMES[day]) for day in range(7)
        )
        if not any(self.weekly_hours):
            # Without a working weekday, "the next working period" could be never.
            raise CalendarDataError(f"calendar {name!r} has no working hours on any weekday")
        self.holidays = frozenset(holidays)
        self.makeup_working_days = frozenset(makeup_working_days)
        both = self.holidays & self.makeup_working_days
        if both:
            listed = ", ".join(sorted(day.isoformat() for day in both))
            raise CalendarDataError(f"dates both holiday and make-up working day: {listed}")
        # A make-up day (调休) works a normal weekday unless told otherwise: Monday's hours.
        default_makeup = next(shifts for shifts in self.weekly_hours if shifts)
        self.makeup_day_hours = (
            _checked_shifts(makeup_day_hours, "make-up day")
            if makeup_day_hours is not None
            else default_makeup
        )
        if self.makeup_working_days and not self.makeup_day_hours:
            raise CalendarDataError("make-up working days need working hours")
        self.covered_years = frozenset(covered_years)

    @property
    def name(self) -> str:
        """The region or name the calendar was built for."""
        return self._name

    def __repr__(self) -> str:
        return f"BusinessCalendar(name={self._name!r}, time_zone={self.time_zone.key!r})"

    def covers(self, day: date) -> bool:
        """True when the data lists that year's holidays (outside, only weekends are off)."""
        return day.year in self.covered_years

    def shifts_on(self, day: date) -> tuple[Shift, ...]:
        """The working shifts of one local date."""
        if day in self.holidays:
            return ()
        if day in self.makeup_working_days:
            return self.makeup_day_hours
        return self.weekly_hours[day.weekday()]

    def is_working_day(self, day: date) -> bool:
        """True when the local date has any working hours."""
        return bool(self.shifts_on(day))

    def is_working_time(self, at: datetime) -> bool:
        """True when `at` falls inside a shift (a shift's end is already outside)."""
        at = as_utc(at)
        start, _ = next(self._periods_from(at))
        return start <= at

    def next_working_time(self, at: datetime) -> datetime:
        """`at` itself when it is working time, else the start of the next shift."""
        at = as_utc(at)
        start, _ = next(self._periods_from(at))
        return max(start, at)

    def working_periods(
        self, start: datetime, end: datetime
    ) -> Iterator[tuple[datetime, datetime]]:
        """The working periods within [start, end), clipped to it, in UTC."""
        start, end = as_utc(start), as_utc(end)
        for period_start, period_end in self._periods_from(start):
            if period_start >= end:
                return
            yield max(period_start, start), min(period_end, end)

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant `duration` of working time after `start`.

        A zero duration returns `start` unchanged. Otherwise the result is inside a shift or
        exactly at a shift's end (never at the start of the next one), so "8 business hours
        from Friday 10:00" ends Monday, and a budget used up at 18:00 is due at 18:00.
        """
        start = as_utc(start)
        if duration < timedelta(0):
            raise ValueError("duration must not be negative")
        if not duration:
            return start
        remaining = duration
        for period_start, period_end in self._periods_from(start):
            period_start = max(period_start, start)
            available = period_end - period_start
            if remaining <= available:
                return period_start + remaining
            remaining -= available
        raise AssertionError("unreachable: working periods never run out")

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time from `start` to `end`; negative when `end` is before `start`."""
        start, end = as_utc(start), as_utc(end)
        if end < start:
            return -self.business_time_between(end, start)
        total = timedelta(0)
        for period_start, period_end in self.working_periods(start, end):
            total += period_end - period_start
        return total

    def _instant(self, day: date, offset: timedelta) -> datetime:
        # Wall-clock arithmetic on purpose: 24:00 is the next local midnight, and a shift
        # boundary inside a DST gap resolves the way zoneinfo resolves that wall time.
        local = datetime.combine(day, time(0), tzinfo=self.time_zone) + offset
        return local.astimezone(UTC)

    def _periods_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working periods (UTC) ending after `at`, in order, forever."""
        # Start a day early: a shift ending at 24:00 the day before may still be open.
        day = at.astimezone(self.time_zone).date() - _DAY
        last_end: datetime | None = None
        while True:
            for shift in self.shifts_on(day):
                start, end = self._instant(day, shift.start), self._instant(day, shift.end)
                # Around a DST change two wall times can map out of order: keep periods
                # disjoint and increasing so the arithmetic stays monotonic.
                if last_end is not None and start < last_end:
                    start = last_end
                if end <= start:
                    continue
                last_end = end
                if end > at:
                    yield start, end
            day += _DAY
