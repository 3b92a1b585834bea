"""The injectable clock: tests move time by hand, utcnow follows the process-wide clock."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.clock import (
    Clock,
    FrozenClock,
    ManualClock,
    SystemClock,
    default_clock,
    using_clock,
)
from shared.time import utcnow

START = datetime(2026, 2, 13, 8, 0, tzinfo=UTC)


class TestManualClock:
    def test_stands_still_until_moved(self):
        clock = ManualClock(START)
        assert clock.now() == clock.now() == START
        assert clock.advance(timedelta(hours=2)) == START + timedelta(hours=2)
        clock.set(START - timedelta(days=1))
        assert clock.now() == START - timedelta(days=1)

    def test_reports_utc_whatever_zone_it_was_given(self):
        clock = FrozenClock(datetime(2026, 2, 13, 16, 0, tzinfo=timezone(timedelta(hours=8))))
        assert clock.now() == START
        assert clock.now().tzinfo is UTC

    def test_refuses_naive_times_and_going_back_with_advance(self):
        with pytest.raises(ValueError, match="naive"):
            ManualClock(datetime(2026, 2, 13))
        with pytest.raises(ValueError, match="forward"):
            ManualClock(START).advance(timedelta(seconds=-1))

    def test_both_clocks_satisfy_the_protocol(self):
        assert isinstance(ManualClock(START), Clock)
        assert isinstance(SystemClock(), Clock)
        assert SystemClock().now().tzinfo is UTC


class TestDefaultClock:
    def test_utcnow_follows_the_installed_clock_and_the_old_one_comes_back(self):
        before = default_clock()
        with using_clock(ManualClock(START)) as clock:
            assert utcnow() == START
            clock.advance(timedelta(minutes=5))
            assert utcnow() == START + timedelta(minutes=5)
        assert default_clock() is before
        assert utcnow().tzinfo is UTC
