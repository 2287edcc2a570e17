"""Retry schedule for outbox deliveries: capped exponential backoff with "equal jitter"."""

import random

BASE_SECONDS = 30
CAP_SECONDS = 6 * 3600


def retry_delay(attempt, rng=random, base=BASE_SECONDS, cap=CAP_SECONDS):
    """Seconds to wait after the ``attempt``-th failed attempt (1-based).

    The ceiling doubles per attempt (30 s, 60 s, 120 s … capped at 6 h); the delay is drawn from
    [ceiling/2, ceiling] so that many rows failing together (engine down) spread out on recovery.
    """
    attempt = max(1, int(attempt))
    ceiling = min(cap, base * 2 ** min(attempt - 1, 32))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)
