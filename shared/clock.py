"""An injectable clock: production reads the system time, tests move time by hand."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime:
        """Returns the current time (aware, UTC)."""
        ...


class SystemClock:
    """The real time of the machine."""

    def now(self) -> datetime:
        """Returns the system time as an aware UTC datetime."""
        return datetime.now(UTC)


def as_utc(at: datetime) -> datetime:
    """Converts an aware datetime to UTC; refuses a naive one (its meaning is a guess)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: pass an aware datetime")
    return at.astimezone(UTC)


class ManualClock:
    """A clock that stands still until a test sets or advances it: time moves, nobody sleeps."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = as_utc(start) if start is not None else datetime.now(UTC)

    def now(self) -> datetime:
        """Returns the time the clock was last set to."""
        return self._now

    def set(self, at: datetime) -> None:
        """Moves the clock to `at` (backwards too: tests may need it)."""
        self._now = as_utc(at)

    def advance(self, by: timedelta) -> datetime:
        """Moves the clock forward by `by` and returns the new time."""
        if by < timedelta(0):
            raise ValueError("advance() moves forward only; use set() to go back")
        self._now += by
        return self._now


# A frozen clock is a manual one nobody advances; both names read well in tests.
FrozenClock = ManualClock

_default_clock: Clock = SystemClock()


def default_clock() -> Clock:
    """The process-wide clock behind `shared.time.utcnow`."""
    return _default_clock


def set_default_clock(clock: Clock) -> Clock:
    """Replaces the process-wide clock and returns the previous one."""
    global _default_clock
    previous, _default_clock = _default_clock, clock
    return previous


ClockT = TypeVar("ClockT", bound=Clock)


@contextmanager
def using_clock(clock: ClockT) -> Iterator[ClockT]:
    """Makes `clock` the process-wide clock for the block, then restores the previous one."""
    previous = set_default_clock(clock)
    try:
        yield clock
    finally:
        set_default_clock(previous)
