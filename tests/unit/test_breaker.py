"""The circuit breaker and the retry delay (cdc.pipeline.breaker)."""

from __future__ import annotations

import asyncio
import random

from cdc.pipeline.breaker import BreakerState, CircuitBreaker, retry_delay


def state(b: CircuitBreaker) -> BreakerState:
    return b.state  # read through a call: mypy would keep the narrowing of an earlier assert


def test_retry_delay_grows_with_jitter_is_capped_and_honours_retry_after() -> None:
    rng = random.Random(1)
    delays = [retry_delay(a, None, cap=5.0, rng=rng) for a in range(1, 12)]
    assert all(0.1 <= d <= 0.2 for d in delays[:1])
    assert all(d <= 5.0 for d in delays) and delays[-1] >= 2.5
    assert retry_delay(1, 7.5, cap=5.0, rng=rng) == 7.5  # Retry-After wins over the cap
    assert len({round(retry_delay(3, None, 5.0, rng=rng), 6) for _ in range(20)}) > 1


def test_opens_after_consecutive_failures_then_one_probe_closes_it() -> None:
    async def scenario() -> None:
        b = CircuitBreaker(threshold=3, open_s=0.05)
        for ok in (False, False, True, False, False):  # a success resets the count
            await b.acquire()
            b.record(ok)
        assert state(b) is BreakerState.CLOSED and b.failures == 2
        await b.acquire()
        b.record(False)
        assert state(b) is BreakerState.OPEN and b.opened == 1
        # While open nobody passes; after open_s exactly one probe does, the others wait for its result.
        lanes = {asyncio.create_task(b.acquire()) for _ in range(3)}
        done, waiting = await asyncio.wait(lanes, return_when=asyncio.FIRST_COMPLETED)
        assert len(done) == 1 and state(b) is BreakerState.HALF_OPEN
        b.record(True)
        await asyncio.gather(*waiting)
        assert state(b) is BreakerState.CLOSED

    asyncio.run(scenario())


def test_a_failed_probe_opens_it_again() -> None:
    async def scenario() -> None:
        b = CircuitBreaker(threshold=1, open_s=0.02)
        await b.acquire()
        b.record(False)
        await b.acquire()  # the probe, after open_s
        assert state(b) is BreakerState.HALF_OPEN
        b.record(False)
        assert state(b) is BreakerState.OPEN and b.opened == 2

    asyncio.run(scenario())
