"""When to try a failed delivery again, and when to give up (dead-letter it).

A schedule is a list of delays after each failed attempt, growing roughly exponentially. Each
delay is jittered (±10% by default) so that the deliveries that failed together while an
endpoint was down do not all come back at the same second when it recovers. The randomness is
an argument (`draw`, uniform in [0, 1)), so the rule stays pure and tests pick it.

Merchant webhooks follow the Standard Webhooks schedule: 5 seconds, 5 minutes, 30 minutes,
2 hours, 5 hours, 10 hours, then dead-letter: seven attempts over about 17.5 hours, long
enough for a merchant to notice an outage and fix it overnight. SMS, push and email providers
get a shorter schedule: a customer message that arrives a day late is worse than a dead letter
an operator can look at.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from shared.clock import as_utc

DEFAULT_JITTER = 0.1


@dataclass(frozen=True)
class RetryPolicy:
    """Delays after the 1st, 2nd... failed attempt; past the last one, dead-letter."""

    delays: tuple[timedelta, ...]
    # The fraction a delay may move either way.
    jitter: float = DEFAULT_JITTER

    def __post_init__(self) -> None:
        if not self.delays:
            raise ValueError("a retry policy needs at least one delay")
        if any(delay <= timedelta(0) for delay in self.delays):
            raise ValueError("retry delays must be positive")
        if any(later < earlier for earlier, later in pairwise(self.delays)):
            raise ValueError("retry delays must not shrink")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter is a fraction in [0, 1)")

    @property
    def max_attempts(self) -> int:
        """How many attempts a message gets in all, the first one included."""
        return len(self.delays) + 1

    @classmethod
    def exponential(
        cls,
        *,
        first: timedelta,
        factor: float,
        retries: int,
        cap: timedelta,
        jitter: float = DEFAULT_JITTER,
    ) -> "RetryPolicy":
        """A policy whose delays grow by `factor` from `first`, never above `cap`."""
        if factor < 1:
            raise ValueError("an exponential schedule grows: factor >= 1")
        delays = tuple(min(first * factor**number, cap) for number in range(retries))
        return cls(delays=delays, jitter=jitter)


WEBHOOK_RETRY_POLICY = RetryPolicy(
    delays=(
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
    )
)
# 30 s, 2 min, 8 min, 32 min, 1 h: a customer message is worth little after a few hours.
PROVIDER_RETRY_POLICY = RetryPolicy.exponential(
    first=timedelta(seconds=30), factor=4, retries=5, cap=timedelta(hours=1)
)


@dataclass(frozen=True)
class RetryDecision:
    """After a failed attempt: when to try again, or None to dead-letter, and why."""

    retry_at: datetime | None
    next_attempt: int
    reason: str

    @property
    def dead_letter(self) -> bool:
        """Whether the message is given up and goes to the dead letters."""
        return self.retry_at is None


def jittered(delay: timedelta, jitter: float, draw: float) -> timedelta:
    """`delay` moved by up to ±`jitter` of itself, `draw` choosing where (0.5: unchanged)."""
    if not 0 <= draw < 1:
        raise ValueError("draw is uniform in [0, 1)")
    return delay * (1 + jitter * (2 * draw - 1))


def after_failure(
    policy: RetryPolicy,
    *,
    attempts_made: int,
    failed_at: datetime,
    retryable: bool,
    draw: float,
) -> RetryDecision:
    """What to do after attempt number `attempts_made` failed at `failed_at`."""
    if attempts_made < 1:
        raise ValueError("attempts_made counts the failed attempt: at least 1")
    failed_at = as_utc(failed_at)
    if not retryable:
        return RetryDecision(None, attempts_made, "not retryable: another try cannot help")
    if attempts_made > len(policy.delays):
        return RetryDecision(
            None, attempts_made, f"gave up after {attempts_made} attempts: the schedule is spent"
        )
    delay = jittered(policy.delays[attempts_made - 1], policy.jitter, draw)
    return RetryDecision(
        failed_at + delay,
        attempts_made + 1,
        f"attempt {attempts_made + 1} of {policy.max_attempts} after {delay}",
    )
