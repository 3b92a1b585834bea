"""Durations the resolution rules promise in: elapsed hours or days, working hours or days.

"Refund within 3 working days" and "auto-close 7 days after resolution" are different kinds of
time: the first counts only the business calendar's working time, the second every instant.
A `TimeBudget` says which, so each rule states its promise once and the arithmetic (an
`SlaClock` on the right calendar) follows from it.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.calendar import TWENTY_FOUR_SEVEN, BusinessCalendar, Calendar, SlaClock


class TimeUnit(StrEnum):
    """How a budget counts time."""

    HOURS = "hours"
    DAYS = "days"
    WORKING_HOURS = "working_hours"
    WORKING_DAYS = "working_days"


BUSINESS_UNITS = frozenset({TimeUnit.WORKING_HOURS, TimeUnit.WORKING_DAYS})
_BUDGET_TEXT = re.compile(r"^\s*(\d+)\s*([a-z_ ]+?)\s*$")


def working_day(calendar: Calendar) -> timedelta:
    """The working time in one ordinary working day of `calendar` (24 h when all time counts).

    A business calendar's first working weekday sets the length (7.5 h in the cn calendar), so
    "3 working days from Monday 10:00" ends on Thursday at 10:00.
    """
    if isinstance(calendar, BusinessCalendar):
        for shifts in calendar.weekly_hours:
            if shifts:
                return sum((shift.end - shift.start for shift in shifts), timedelta(0))
    return timedelta(days=1)


@dataclass(frozen=True)
class TimeBudget:
    """A positive amount of elapsed or working time."""

    amount: int
    unit: TimeUnit

    def __post_init__(self) -> None:
        if self.amount <= 0:
            raise ValueError(f"a time budget must be positive, got {self.amount} {self.unit}")

    @classmethod
    def parse(cls, text: str) -> "TimeBudget":
        """Reads `"2 working_days"`, `"48 hours"`, `"7 days"` (as settings state them)."""
        match = _BUDGET_TEXT.match(text.lower())
        unit = match.group(2).replace(" ", "_") if match else ""
        if match is None or unit not in {member.value for member in TimeUnit}:
            units = ", ".join(member.value for member in TimeUnit)
            raise ValueError(f"time budget {text!r} is not '<number> <unit>' with unit in {units}")
        return cls(int(match.group(1)), TimeUnit(unit))

    def __str__(self) -> str:
        return f"{self.amount} {self.unit.value.replace('_', ' ')}"

    @property
    def counts_business_time(self) -> bool:
        """True when only the business calendar's working time counts."""
        return self.unit in BUSINESS_UNITS

    def calendar(self, business_calendar: Calendar) -> Calendar:
        """The calendar this budget counts in: the business one, or every instant."""
        return business_calendar if self.counts_business_time else TWENTY_FOUR_SEVEN

    def duration(self, business_calendar: Calendar) -> timedelta:
        """The budget as time on its own calendar."""
        if self.unit is TimeUnit.HOURS or self.unit is TimeUnit.WORKING_HOURS:
            return timedelta(hours=self.amount)
        if self.unit is TimeUnit.DAYS:
            return timedelta(days=self.amount)
        return self.amount * working_day(business_calendar)

    def clock(self, start: datetime, business_calendar: Calendar) -> SlaClock:
        """A running SLA clock for this budget from `start`."""
        return SlaClock.start(self.duration(business_calendar), start)

    def due_at(self, start: datetime, business_calendar: Calendar) -> datetime:
        """When the budget started at `start` runs out."""
        return self.calendar(business_calendar).add_business_time(
            start, self.duration(business_calendar)
        )
