"""Business calendars (working hours, holidays, make-up days per region) and SLA clocks."""

from shared.calendar.business import (
    TWENTY_FOUR_SEVEN,
    BusinessCalendar,
    Calendar,
    CalendarDataError,
    Shift,
    TwentyFourSeven,
)
from shared.calendar.loading import DEFAULT_REGION, calendar_for, calendar_from_dict, load_calendar
from shared.calendar.sla import SlaClock, SlaClockError

__all__ = [
    "DEFAULT_REGION",
    "TWENTY_FOUR_SEVEN",
    "BusinessCalendar",
    "Calendar",
    "CalendarDataError",
    "Shift",
    "SlaClock",
    "SlaClockError",
    "TwentyFourSeven",
    "calendar_for",
    "calendar_from_dict",
    "load_calendar",
]
