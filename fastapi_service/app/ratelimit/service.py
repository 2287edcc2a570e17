"""Fixed per-minute budgets per API key and per (chatbot, client IP), with the `limits` library.

The storage comes from RATE_LIMIT_STORAGE_URL (`memory://` in one process, `redis://host:port` so
limits hold across processes), the fixed-window strategy from `limits.strategies`; the checks run
in a dependency because the budgets depend on the chatbot the key resolves to. Storage calls for
networked backends run in a thread so they never block the event loop.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute, parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from app.errors import RateLimited


@dataclass(frozen=True)
class Budget:
    scope: str  # "key" | "ip" | "auth"
    identifier: str
    item: RateLimitItem


class RateLimiter:
    def __init__(self, storage_url: str, default_key: str, default_ip: str, auth_failures: str = "20/minute") -> None:
        self._storage = storage_from_string(storage_url)
        self._strategy = FixedWindowRateLimiter(self._storage)
        self._in_process = storage_url.startswith("memory://")
        self.default_key = parse(default_key)
        self.default_ip = parse(default_ip)
        self.auth_failures = parse(auth_failures)

    @staticmethod
    def per_minute(value: int | None, default: RateLimitItem) -> RateLimitItem:
        return RateLimitItemPerMinute(value) if value else default

    def _hit_all(self, budgets: list[Budget]) -> float | None:
        """Count one hit against each budget; seconds to wait if any is exhausted."""
        for budget in budgets:
            if not self._strategy.hit(budget.item, budget.scope, budget.identifier):
                stats = self._strategy.get_window_stats(budget.item, budget.scope, budget.identifier)
                return max(1.0, stats.reset_time - time.time())
        return None

    def _wait_if_exhausted(self, budget: Budget) -> float | None:
        """Seconds until `budget` has room again, without counting a hit; None if it has room now."""
        if self._strategy.test(budget.item, budget.scope, budget.identifier):
            return None
        stats = self._strategy.get_window_stats(budget.item, budget.scope, budget.identifier)
        return max(1.0, stats.reset_time - time.time())

    async def refuse_if_exhausted(self, budget: Budget) -> None:
        """429 when `budget` is used up: lets a caller stop *before* doing the work it budgets."""
        if self._in_process:
            wait = self._wait_if_exhausted(budget)
        else:
            wait = await asyncio.to_thread(self._wait_if_exhausted, budget)
        if wait is not None:
            raise RateLimited(
                "too many failed attempts; slow down and retry later", headers={"Retry-After": str(math.ceil(wait))}
            )

    async def count(self, budget: Budget) -> None:
        """Count one hit against `budget`, refusing nothing now (the next call is refused)."""
        if self._in_process:
            self._strategy.hit(budget.item, budget.scope, budget.identifier)
        else:
            await asyncio.to_thread(self._strategy.hit, budget.item, budget.scope, budget.identifier)

    async def check(self, budgets: list[Budget]) -> None:
        if self._in_process:
            wait = self._hit_all(budgets)
        else:
            wait = await asyncio.to_thread(self._hit_all, budgets)
        if wait is not None:
            raise RateLimited(
                "too many requests; slow down and retry later", headers={"Retry-After": str(math.ceil(wait))}
            )
