"""SLA deadlines (时效): first response and resolution per priority and channel.

Defaults and why:
- first response: urgent 2 h, important 24 h, general 48 h (DOMAIN.md §2, the manuals'
  promises). Live and public channels are capped: a customer on chat or the hotline, or
  complaining on social media, hears back within 24 h even when the case is general.
- resolution: urgent 24 h (major cases get an executive-led answer within 24 hours and the
  quality remedy is a reship within 24 h); important 72 h (the marketplaces' merchant
  deadline, Amazon A-to-z's 72 h, and eBay's 3 business days before the platform steps in);
  general 7 days (the statutory 7-day window for refunds after a return, Consumer
  Protection Law Art. 25, and WeChat stores' 7-day escalation window).
- Important and general deadlines count business time when a calendar is configured (a
  Friday-evening complaint is not late on Monday morning); urgent ones always count
  elapsed time, because an injury or a threat to go to the regulator does not wait for
  Monday.
- Time spent paused (waiting on the customer or a third party) does not count; a warning is
  due when 80% of the budget is used.

Everything here is a pure function of its inputs: the caller passes the calendar, the pauses
and, for the state, the current time.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from shared.calendar import TWENTY_FOUR_SEVEN, Calendar, SlaClock
from shared.events.vocabulary import Channel, Priority, known

Pause = tuple[datetime, datetime | None]

HOUR = timedelta(hours=1)

DEFAULT_FIRST_RESPONSE: dict[Priority, timedelta] = {
    Priority.URGENT: 2 * HOUR,
    Priority.IMPORTANT: 24 * HOUR,
    Priority.GENERAL: 48 * HOUR,
}
DEFAULT_RESOLUTION: dict[Priority, timedelta] = {
    Priority.URGENT: 24 * HOUR,
    Priority.IMPORTANT: 72 * HOUR,
    Priority.GENERAL: timedelta(days=7),
}
# Caps on the first response for channels where the customer is waiting live or in public.
DEFAULT_FIRST_RESPONSE_CAP_BY_CHANNEL: dict[str, timedelta] = {
    Channel.CHAT: 24 * HOUR,
    Channel.HOTLINE: 24 * HOUR,
    Channel.SOCIAL: 24 * HOUR,
}


class DeadlineState(StrEnum):
    """Where a deadline stands at a given moment."""

    ON_TRACK = "on_track"
    WARNING = "warning"
    BREACHED = "breached"
    PAUSED = "paused"


@dataclass(frozen=True)
class DeadlinePolicy:
    """Budgets per priority, caps per channel, which priorities count business time."""

    first_response: Mapping[Priority, timedelta] = field(
        default_factory=lambda: dict(DEFAULT_FIRST_RESPONSE)
    )
    resolution: Mapping[Priority, timedelta] = field(
        default_factory=lambda: dict(DEFAULT_RESOLUTION)
    )
    first_response_cap_by_channel: Mapping[str, timedelta] = field(
        default_factory=lambda: dict(DEFAULT_FIRST_RESPONSE_CAP_BY_CHANNEL)
    )
    business_time_priorities: frozenset[Priority] = frozenset(
        {Priority.IMPORTANT, Priority.GENERAL}
    )
    warning_fraction: float = 0.8

    def __post_init__(self) -> None:
        if not 0 < self.warning_fraction < 1:
            raise ValueError("warning_fraction must be between 0 and 1")
        for name, budgets in (
            ("first_response", self.first_response),
            ("resolution", self.resolution),
        ):
            missing = set(Priority) - set(budgets)
            if missing:
                raise ValueError(f"{name} has no budget for {sorted(missing)}")
            if any(budget <= timedelta(0) for budget in budgets.values()):
                raise ValueError(f"{name} budgets must be positive")


@dataclass(frozen=True)
class Deadline:
    """One SLA: its running clock, the calendar it counts in, when it is due and when to warn."""

    clock: SlaClock
    calendar: Calendar
    due_at: datetime | None
    warn_at: datetime | None

    def state(self, now: datetime) -> DeadlineState:
        """On track, warning (80% used), breached, or paused with budget left."""
        used = self.clock.fraction_used(now, self.calendar)
        if used >= 1:
            return DeadlineState.BREACHED
        if self.clock.is_paused:
            return DeadlineState.PAUSED
        if self.warn_at is not None and now >= self.warn_at:
            return DeadlineState.WARNING
        return DeadlineState.ON_TRACK


@dataclass(frozen=True)
class Deadlines:
    """The first-response and resolution deadlines of one complaint."""

    priority: Priority
    first_response: Deadline
    resolution: Deadline


def first_response_budget(
    priority: str, channel: str | None, *, policy: DeadlinePolicy | None = None
) -> timedelta:
    """The first-response budget for a priority on a channel (unknown priority: general)."""
    policy = policy or DeadlinePolicy()
    budget = policy.first_response[_priority(priority)]
    cap = policy.first_response_cap_by_channel.get(channel or "")
    return min(budget, cap) if cap is not None else budget


def resolution_budget(priority: str, *, policy: DeadlinePolicy | None = None) -> timedelta:
    """The resolution budget for a priority (unknown priority: general)."""
    policy = policy or DeadlinePolicy()
    return policy.resolution[_priority(priority)]


def deadline(
    budget: timedelta,
    *,
    started_at: datetime,
    calendar: Calendar = TWENTY_FOUR_SEVEN,
    pauses: Sequence[Pause] = (),
    warning_fraction: float = 0.8,
) -> Deadline:
    """A deadline `budget` of calendar time after `started_at`, shifted by the paused time."""
    clock = SlaClock(budget=budget, started_at=started_at, pauses=tuple(pauses))
    warning_clock = SlaClock(
        budget=budget * warning_fraction, started_at=started_at, pauses=tuple(pauses)
    )
    return Deadline(
        clock=clock,
        calendar=calendar,
        due_at=clock.due_at(calendar),
        warn_at=warning_clock.due_at(calendar),
    )


def compute_deadlines(
    *,
    priority: str,
    channel: str | None,
    received_at: datetime,
    calendar: Calendar = TWENTY_FOUR_SEVEN,
    pauses: Sequence[Pause] = (),
    policy: DeadlinePolicy | None = None,
) -> Deadlines:
    """First-response and resolution deadlines for a complaint received at `received_at`.

    `calendar` is the configured business calendar (24x7 when none is); `pauses` are
    (paused_at, resumed_at) pairs in order, the last one possibly still open (None).
    """
    policy = policy or DeadlinePolicy()
    level = _priority(priority)
    counting = calendar if level in policy.business_time_priorities else TWENTY_FOUR_SEVEN
    return Deadlines(
        priority=level,
        first_response=deadline(
            first_response_budget(level, channel, policy=policy),
            started_at=received_at,
            calendar=counting,
            pauses=pauses,
            warning_fraction=policy.warning_fraction,
        ),
        resolution=deadline(
            resolution_budget(level, policy=policy),
            started_at=received_at,
            calendar=counting,
            pauses=pauses,
            warning_fraction=policy.warning_fraction,
        ),
    )


def _priority(value: str) -> Priority:
    # A priority this version does not know is worked as general (open vocabulary).
    return known(Priority, value) or Priority.GENERAL
