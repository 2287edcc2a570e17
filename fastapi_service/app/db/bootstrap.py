"""Attach the database once per process: the API's lifespan and `python -m app.worker` both use it.

Local mode (no DATABASE_URL) starts the embedded server; then migrations are applied and the pool
is opened, in an API process (`searches`) the search pool too (app/db/pool.py). Every step is
retried with backoff until it works (the database may start after the engine, e.g. in Compose),
and `startup_error` says why it does not yet, for /readyz. `close()` closes the pools (terminating
connections still busy after `POOL_CLOSE_SECONDS`) and stops the embedded server this process
started.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import asyncpg

from app.config import Settings
from app.db.embedded import EmbeddedPostgres
from app.db.migrations import apply_migrations
from app.db.pool import create_pool

logger = logging.getLogger(__name__)

POOL_CLOSE_SECONDS = 10.0
FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 10.0


@dataclass
class Database:
    settings: Settings
    searches: bool = False  # whether this process serves searches: then it opens the search pool
    pool: asyncpg.Pool | None = None
    search_pool: asyncpg.Pool | None = None
    dsn: str | None = None
    startup_error: str | None = None
    embedded: EmbeddedPostgres | None = field(default=None, repr=False)

    async def connect(self) -> asyncpg.Pool:
        """Start/attach the database, apply migrations, open the pool(s); retry until it works."""
        delay = FIRST_RETRY_SECONDS
        while True:
            try:
                return await self._connect_once()
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                self.startup_error = f"unreachable: {type(exc).__name__}: {exc}"
                logger.warning("database not reachable yet; retrying", extra={"error": str(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)

    async def _connect_once(self) -> asyncpg.Pool:
        if self.settings.embedded_database:
            if self.embedded is None:
                self.embedded = EmbeddedPostgres(self.settings.state_dir)
                self.dsn = await asyncio.to_thread(self.embedded.start)
        else:
            self.dsn = self.settings.database_url
        assert self.dsn is not None
        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            applied = await apply_migrations(conn)
            if applied:
                logger.info("migrations applied", extra={"migrations": applied})
        finally:
            await conn.close()
        pool = await create_pool(self.settings, self.dsn)
        if self.searches:
            try:
                self.search_pool = await create_pool(self.settings, self.dsn, searches=True)
            except BaseException:
                pool.terminate()  # the next attempt opens both again
                raise
        self.pool = pool
        self.startup_error = None
        return self.pool

    async def close(self) -> None:
        """Close the pools and stop the embedded server this process started; never hangs."""
        pools = [p for p in (self.search_pool, self.pool) if p is not None]
        self.pool = self.search_pool = None
        if pools:
            try:
                await asyncio.wait_for(asyncio.gather(*(p.close() for p in pools)), POOL_CLOSE_SECONDS)
            except TimeoutError:
                logger.warning("database connections still busy at shutdown; terminating them")
                for p in pools:
                    p.terminate()
        if self.embedded is not None:
            embedded, self.embedded = self.embedded, None
            await asyncio.to_thread(embedded.stop)
