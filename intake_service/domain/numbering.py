"""Complaint numbers: year and month in the business's time zone, then a sequence.

`YYYYMM-NNNNNN`, e.g. `202405-000123`: unique, increasing within a month, readable over the
phone. The sequence itself comes from one Postgres sequence per month (migration
intake_0003), so replicas never wait on each other for a number; past 999999 in a month the
number simply grows a digit rather than wrapping.
"""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

NUMBER_PATTERN = re.compile(r"^(?P<period>[0-9]{6})-(?P<sequence>[0-9]{6,})$")
SEQUENCE_DIGITS = 6


def numbering_period(at: datetime, timezone: ZoneInfo) -> str:
    """The month a complaint is numbered in: the business's calendar month, not UTC's."""
    return at.astimezone(timezone).strftime("%Y%m")


def format_number(period: str, sequence: int) -> str:
    """Formats a number the way `intake.next_complaint_number` does in the database."""
    return f"{period}-{sequence:0{SEQUENCE_DIGITS}d}"


def parse_number(number: str) -> tuple[str, int] | None:
    """The period and sequence of a complaint number, or None when it is not one."""
    match = NUMBER_PATTERN.match(number)
    if match is None:
        return None
    return match["period"], int(match["sequence"])
