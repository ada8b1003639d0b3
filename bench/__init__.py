"""Benchmarks that print figures beside a reference measured in the same run; they assert nothing."""

import time


def machine_speed() -> str:
    """A fixed pure-Python loop's time: on a shared machine the same code's rate drifts by a fifth or more
    within an hour, so a run prints this before and after its figures, to be compared with other runs."""
    start = time.perf_counter()
    total = 0
    for i in range(20_000_000):
        total += i
    return f"a fixed Python loop (20,000,000 additions) took {time.perf_counter() - start:.2f} s"
