"""Durable timers: rows scheduled with a state change, fired exactly once by a worker."""

from shared.timers.schedule import cancel, purge_finished_timers, schedule, schedule_again
from shared.timers.table import (
    CANCELLED,
    FAILED,
    FIRED,
    PENDING,
    STATUSES,
    Timer,
    timers_table,
)
from shared.timers.worker import (
    TimerHandler,
    TimerRetryPolicy,
    TimerWorker,
    UnknownTimerKindError,
    is_database_outage,
)

__all__ = [
    "CANCELLED",
    "FAILED",
    "FIRED",
    "PENDING",
    "STATUSES",
    "Timer",
    "TimerHandler",
    "TimerRetryPolicy",
    "TimerWorker",
    "UnknownTimerKindError",
    "cancel",
    "is_database_outage",
    "purge_finished_timers",
    "schedule",
    "schedule_again",
    "timers_table",
]
