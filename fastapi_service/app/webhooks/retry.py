"""The retry schedule of the engine's outboxes to Odoo (status callbacks, handoff notices)."""

from __future__ import annotations

LEASE_SECONDS = 60  # a row being sent is invisible to other workers this long
MAX_BACKOFF_SECONDS = 600


def backoff_seconds(attempts: int) -> float:
    """1, 2, 4 ... seconds after the 1st, 2nd, 3rd failed attempt, at most MAX_BACKOFF_SECONDS."""
    return float(min(2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))
