"""Fixed per-minute budgets per API key and per (chatbot, client IP), with the `limits` library.

The storage comes from RATE_LIMIT_STORAGE_URL (`memory://` in one process, `redis://host:port` so
limits hold across processes), the fixed-window strategy from `limits.aio.strategies`; the checks
run in a dependency because the budgets depend on the chatbot the key resolves to. `limits`' async
storages are used (`async+memory://`, `async+redis://` through redis-py's asyncio client): a Redis
round trip never blocks the event loop nor takes a thread, and the in-process storage expires its
counters in an event-loop task, where the synchronous one starts a `threading.Timer` every 10 ms
while it holds any counter.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute, parse
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from app.errors import RateLimited


@dataclass(frozen=True)
class Budget:
    scope: str  # "key" | "ip" | "auth"
    identifier: str
    item: RateLimitItem


class RateLimiter:
    def __init__(self, storage_url: str, default_key: str, default_ip: str, auth_failures: str = "20/minute") -> None:
        uri, options = async_storage(storage_url)
        self._storage = storage_from_string(uri, **options)
        self._strategy = FixedWindowRateLimiter(self._storage)
        self.default_key = parse(default_key)
        self.default_ip = parse(default_ip)
        self.auth_failures = parse(auth_failures)

    @staticmethod
    def per_minute(value: int | None, default: RateLimitItem) -> RateLimitItem:
        return RateLimitItemPerMinute(value) if value else default

    async def _wait(self, budget: Budget) -> float:
        stats = await self._strategy.get_window_stats(budget.item, budget.scope, budget.identifier)
        return max(1.0, stats.reset_time - time.time())

    async def refuse_if_exhausted(self, budget: Budget) -> None:
        """429 when `budget` is used up: lets a caller stop *before* doing the work it budgets."""
        if not await self._strategy.test(budget.item, budget.scope, budget.identifier):
            raise RateLimited(
                "too many failed attempts; slow down and retry later",
                headers={"Retry-After": str(math.ceil(await self._wait(budget)))},
            )

    async def count(self, budget: Budget) -> None:
        """Count one hit against `budget`, refusing nothing now (the next call is refused)."""
        await self._strategy.hit(budget.item, budget.scope, budget.identifier)

    async def check(self, budgets: list[Budget]) -> None:
        """Count one hit against each budget in turn; 429 at the first one that is exhausted."""
        for budget in budgets:
            if not await self._strategy.hit(budget.item, budget.scope, budget.identifier):
                raise RateLimited(
                    "too many requests; slow down and retry later",
                    headers={"Retry-After": str(math.ceil(await self._wait(budget)))},
                )


def async_storage(url: str) -> tuple[str, dict[str, str]]:
    """RATE_LIMIT_STORAGE_URL as `limits`' async storage URI, with its options: `memory://` and
    `redis://...` (or `rediss://`) name the async storages; Redis through redis-py, which the engine
    pins (limits' async default would be coredis)."""
    uri = url if url.startswith("async+") else f"async+{url}"
    return uri, ({"implementation": "redispy"} if uri.startswith("async+redis") else {})  # rediss:// too
