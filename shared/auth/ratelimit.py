"""Per-caller token buckets, kept in the process (per replica; see docs/adr/0005)."""

import math
import time
from collections.abc import Callable

from shared.auth.settings import RateLimit

MAX_BUCKETS = 100_000


class TokenBuckets:
    """One bucket per caller; `take` answers None (go ahead) or seconds to wait."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # caller -> (tokens left, time of last refill)
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, caller: str, limit: RateLimit) -> float | None:
        """Spends one token; None when allowed, else the seconds until a token is back."""
        now = self._clock()
        tokens, last = self._buckets.get(caller, (float(limit.burst), now))
        tokens = min(float(limit.burst), tokens + (now - last) * limit.per_second)
        if tokens >= 1.0:
            self._store(caller, tokens - 1.0, now)
            return None
        self._store(caller, tokens, now)
        return (1.0 - tokens) / limit.per_second

    def _store(self, caller: str, tokens: float, now: float) -> None:
        if len(self._buckets) >= MAX_BUCKETS and caller not in self._buckets:
            # Memory stays bounded; forgetting a bucket only ever gives a caller a fresh burst.
            self._buckets.clear()
        self._buckets[caller] = (tokens, now)


def retry_after_header(seconds: float) -> str:
    """Whole seconds, at least 1, as Retry-After wants them."""
    return str(max(1, math.ceil(seconds)))
