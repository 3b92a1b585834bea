"""Calendars from data files: working hours, holidays and make-up days per region."""

import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.calendar.business import (
    TWENTY_FOUR_SEVEN,
    WEEKDAY_NAMES,
    BusinessCalendar,
    Calendar,
    CalendarDataError,
    Shift,
)

DEFAULT_REGION = "cn"
# Names that mean "no business calendar": deadlines in plain elapsed time.
ELAPSED_TIME_NAMES = frozenset({"", "24x7", "none"})

_REGION = re.compile(r"^[a-z][a-z0-9_-]*$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_KNOWN_KEYS = frozenset(
    {
        "region",
        "name",
        "comment",
        "source",
        "time_zone",
        "years",
        "working_hours",
        "makeup_day_hours",
        "holidays",
        "makeup_working_days",
    }
)


def calendar_for(region: str | None) -> Calendar:
    """The calendar a setting names: a region's business calendar, or 24x7 when unset."""
    if region is None or region.strip().lower() in ELAPSED_TIME_NAMES:
        return TWENTY_FOUR_SEVEN
    return load_calendar(region.strip().lower())


@cache
def load_calendar(region: str = DEFAULT_REGION) -> BusinessCalendar:
    """Loads and validates `shared/calendar/data/<region>.json` (once per process)."""
    if not _REGION.match(region):
        raise CalendarDataError(f"region {region!r} is not a data file name")
    resource = resources.files("shared.calendar.data").joinpath(f"{region}.json")
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CalendarDataError(f"no calendar data for region {region!r}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalendarDataError(f"{region}.json is not valid JSON: {exc}") from exc
    return calendar_from_dict(data)


def calendar_from_dict(data: Mapping[str, Any]) -> BusinessCalendar:
    """Builds a calendar from its data-file form, refusing anything doubtful."""
    if not isinstance(data, Mapping):
        raise CalendarDataError("calendar data must be a JSON object")
    unknown = set(data) - _KNOWN_KEYS
    if unknown:
        raise CalendarDataError(f"unknown calendar keys: {sorted(unknown)}")
    region = _required(data, "region", str)
    where = f"calendar {region!r}"
    zone_name = _required(data, "time_zone", str)
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarDataError(f"{where}: unknown time zone {zone_name!r}") from exc
    years = data.get("years", [])
    if not isinstance(years, list) or not all(isinstance(y, int) for y in years):
        raise CalendarDataError(f"{where}: years must be a list of integers")

    hours = _required(data, "working_hours", dict)
    unknown_days = set(hours) - set(WEEKDAY_NAMES)
    if unknown_days:
        raise CalendarDataError(f"{where}: unknown weekdays {sorted(unknown_days)}")
    weekly = {
        index: _shifts(hours.get(day, []), f"{where} {day}")
        for index, day in enumerate(WEEKDAY_NAMES)
    }
    makeup_hours = (
        _shifts(data["makeup_day_hours"], f"{where} makeup_day_hours")
        if "makeup_day_hours" in data
        else None
    )

    holidays: set[date] = set()
    for entry in _required(data, "holidays", list):
        if not isinstance(entry, dict) or set(entry) - {"name", "from", "to"}:
            raise CalendarDataError(f"{where}: a holiday is {{name, from, to}}, got {entry!r}")
        first = _date(entry.get("from"), where)
        last = _date(entry.get("to", entry.get("from")), where)
        if last < first:
            raise CalendarDataError(f"{where}: holiday {entry!r} ends before it starts")
        holidays.update(first + timedelta(days=n) for n in range((last - first).days + 1))

    makeup_days: set[date] = set()
    for entry in data.get("makeup_working_days", []):
        if not isinstance(entry, dict) or set(entry) - {"date", "for"}:
            raise CalendarDataError(f"{where}: a make-up day is {{date, for}}, got {entry!r}")
        day = _date(entry.get("date"), where)
        if day in makeup_days:
            raise CalendarDataError(f"{where}: make-up day {day} listed twice")
        makeup_days.add(day)

    if years:
        outside = sorted(day for day in holidays | makeup_days if day.year not in years)
        if outside:
            raise CalendarDataError(f"{where}: dates outside the listed years: {outside[:3]}")
    try:
        return BusinessCalendar(
            name=region,
            time_zone=zone,
            weekly_hours=weekly,
            holidays=holidays,
            makeup_working_days=makeup_days,
            makeup_day_hours=makeup_hours,
            covered_years=years,
        )
    except CalendarDataError as exc:
        raise CalendarDataError(f"{where}: {exc}") from exc


def _required(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise CalendarDataError(f"calendar data needs {key!r} as {kind.__name__}")
    return value


def _shifts(value: Any, where: str) -> Sequence[Shift]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise CalendarDataError(f"{where}: shifts are a list of 'HH:MM-HH:MM' strings")
    try:
        return [Shift.parse(item) for item in value]
    except CalendarDataError as exc:
        raise CalendarDataError(f"{where}: {exc}") from exc


def _date(value: Any, where: str) -> date:
    # fromisoformat alone would also take 20250101 and week dates: insist on one format.
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise CalendarDataError(f"{where}: date {value!r} is not YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CalendarDataError(f"{where}: date {value!r} does not exist") from exc
