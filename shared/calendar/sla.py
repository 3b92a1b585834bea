"""A pausable SLA clock: a budget of business time, started once, paused and resumed."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shared.calendar.business import Calendar
from shared.clock import as_utc

Pause = tuple[datetime, datetime | None]


class SlaClockError(ValueError):
    """An impossible clock operation: resuming a running clock, pausing before the start."""


@dataclass(frozen=True)
class SlaClock:
    """A value: every operation returns a new clock, nothing reads the time or a database.

    `pauses` are (paused_at, resumed_at) in order; only the last may still be open. Which
    calendar counts the time is the caller's choice, so one stored clock can be shown in
    business hours and in plain hours alike.
    """

    budget: timedelta
    started_at: datetime
    pauses: tuple[Pause, ...] = ()

    def __post_init__(self) -> None:
        if self.budget <= timedelta(0):
            raise SlaClockError("an SLA budget must be positive")
        object.__setattr__(self, "started_at", as_utc(self.started_at))
        pauses: list[Pause] = []
        previous_end = self.started_at
        for index, (paused_at, resumed_at) in enumerate(self.pauses):
            paused_at = as_utc(paused_at)
            resumed_at = as_utc(resumed_at) if resumed_at is not None else None
            if paused_at < previous_end:
                raise SlaClockError(f"pause at {paused_at} overlaps the time before it")
            if resumed_at is None:
                if index != len(self.pauses) - 1:
                    raise SlaClockError("only the last pause may still be open")
            elif resumed_at < paused_at:
                raise SlaClockError(f"resume at {resumed_at} is before its pause at {paused_at}")
            pauses.append((paused_at, resumed_at))
            previous_end = resumed_at or paused_at
        object.__setattr__(self, "pauses", tuple(pauses))

    @classmethod
    def start(cls, budget: timedelta, at: datetime) -> "SlaClock":
        """A running clock with the whole budget ahead of it."""
        return cls(budget=budget, started_at=at)

    @property
    def is_paused(self) -> bool:
        """True between a pause and its resume."""
        return bool(self.pauses) and self.pauses[-1][1] is None

    @property
    def last_change_at(self) -> datetime:
        """When the clock last started, paused or resumed."""
        if not self.pauses:
            return self.started_at
        paused_at, resumed_at = self.pauses[-1]
        return resumed_at or paused_at

    def pause(self, at: datetime) -> "SlaClock":
        """Stops the clock at `at` (waiting on the customer, say)."""
        at = as_utc(at)
        if self.is_paused:
            raise SlaClockError("the clock is already paused")
        if at < self.last_change_at:
            raise SlaClockError(f"cannot pause at {at}, before {self.last_change_at}")
        return replace(self, pauses=(*self.pauses, (at, None)))

    def resume(self, at: datetime) -> "SlaClock":
        """Starts the clock again at `at`."""
        at = as_utc(at)
        if not self.is_paused:
            raise SlaClockError("the clock is not paused")
        paused_at, _ = self.pauses[-1]
        if at < paused_at:
            raise SlaClockError(f"cannot resume at {at}, before the pause at {paused_at}")
        return replace(self, pauses=(*self.pauses[:-1], (paused_at, at)))

    def running_periods(self, until: datetime) -> list[tuple[datetime, datetime]]:
        """The stretches the clock ran up to `until` (the open one ends there)."""
        until = as_utc(until)
        periods = []
        for start, end in self._segments():
            end = until if end is None else min(end, until)
            if end > start:
                periods.append((start, end))
        return periods

    def _segments(self) -> list[tuple[datetime, datetime | None]]:
        """Running stretches between pauses; the last one is open (None) when running."""
        segments: list[tuple[datetime, datetime | None]] = []
        start: datetime | None = self.started_at
        for paused_at, resumed_at in self.pauses:
            if start is not None:  # always: only the last pause may be open
                segments.append((start, paused_at))
            start = resumed_at
        if start is not None:
            segments.append((start, None))
        return segments

    def elapsed(self, at: datetime, calendar: Calendar) -> timedelta:
        """Business time used up by `at` (pauses excluded)."""
        total = timedelta(0)
        for start, end in self.running_periods(at):
            total += calendar.business_time_between(start, end)
        return total

    def remaining(self, at: datetime, calendar: Calendar) -> timedelta:
        """Business time left at `at`; negative once the deadline has passed."""
        return self.budget - self.elapsed(at, calendar)

    def fraction_used(self, at: datetime, calendar: Calendar) -> float:
        """Share of the budget used by `at`: 0.0 at the start, 1.0 at the deadline, above after."""
        return self.elapsed(at, calendar) / self.budget

    def due_at(self, calendar: Calendar) -> datetime | None:
        """When the budget runs out; None while paused with budget left (no deadline then)."""
        left = self.budget
        for start, end in self._segments():
            if end is None:
                return calendar.add_business_time(start, left)
            used = calendar.business_time_between(start, end)
            if used >= left:
                # Ran out before this pause: the deadline is in the past and stays put.
                return calendar.add_business_time(start, left)
            left -= used
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for storage (JSONB column or event payload)."""
        return {
            "budget_seconds": self.budget.total_seconds(),
            "started_at": self.started_at.isoformat(),
            "pauses": [
                {
                    "paused_at": paused_at.isoformat(),
                    "resumed_at": resumed_at.isoformat() if resumed_at is not None else None,
                }
                for paused_at, resumed_at in self.pauses
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SlaClock":
        """Rebuilds a clock stored with `to_dict`, validating it like a new one."""
        try:
            pauses = tuple(
                (
                    datetime.fromisoformat(entry["paused_at"]),
                    datetime.fromisoformat(entry["resumed_at"])
                    if entry.get("resumed_at") is not None
                    else None,
                )
                for entry in data.get("pauses", [])
            )
            return cls(
                budget=timedelta(seconds=float(data["budget_seconds"])),
                started_at=datetime.fromisoformat(data["started_at"]),
                pauses=pauses,
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SlaClockError):
                raise
            raise SlaClockError(f"not a stored SLA clock: {exc!r}") from exc
