"""Circuit breaker per endpoint, and the retry delay: how a sink backs off a failing target.

`CircuitBreaker` (one per sink route): closed while requests succeed; after `threshold` consecutive
attempts that failed as a whole (every record retryable: a 5xx, a timeout, a connection reset, a 429)
it opens for `open_s` seconds, during which no lane sends to that endpoint. Then it is half-open: one
request probes the endpoint while the other lanes wait; its success closes the breaker, its failure
opens it again. A per-record rejection is a success here: the endpoint answered.

`retry_delay` is exponential backoff with jitter (the delay is drawn between half and all of
``base * 2**(attempt-1)``, capped at `cap`), never shorter than the target's Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from enum import Enum

__all__ = ["BreakerState", "CircuitBreaker", "retry_delay"]


def retry_delay(attempt: int, retry_after: float | None, cap: float, base: float = 0.2,
                rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt number `attempt + 1` (attempt >= 1 failed so far)."""
    ceiling = min(cap, base * 2 ** min(attempt - 1, 30))
    delay = (rng or random).uniform(ceiling / 2, ceiling)
    return max(delay, retry_after or 0.0)


class BreakerState(Enum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitBreaker:
    """Consecutive-failure breaker for one endpoint, shared by the lanes of one sink (one event loop)."""

    def __init__(self, threshold: int, open_s: float) -> None:
        self.threshold = max(1, threshold)
        self.open_s = open_s
        self.failures = 0
        self.state = BreakerState.CLOSED
        self.opened = 0  # how many times it opened
        self._until = 0.0
        self._probing = False
        self._changed = asyncio.Event()

    async def acquire(self) -> None:
        """Wait until a request may go to the endpoint (immediately while closed)."""
        while True:
            if self.state is BreakerState.CLOSED:
                return
            now = time.monotonic()
            if self.state is BreakerState.OPEN and now >= self._until:
                self.state = BreakerState.HALF_OPEN
            if self.state is BreakerState.HALF_OPEN and not self._probing:
                self._probing = True
                return
            self._changed.clear()
            timeout = max(0.0, self._until - now) if self.state is BreakerState.OPEN else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    def record(self, ok: bool) -> None:
        """The outcome of a request sent after `acquire`."""
        probing, self._probing = self._probing, False
        if ok:
            self.failures = 0
            if self.state is not BreakerState.CLOSED:
                self.state = BreakerState.CLOSED
                self._changed.set()
            return
        self.failures += 1
        if probing or (self.state is BreakerState.CLOSED and self.failures >= self.threshold):
            self.state = BreakerState.OPEN
            self._until = time.monotonic() + self.open_s
            self.opened += 1
            self._changed.set()
