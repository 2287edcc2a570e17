"""`python -m app.worker`: ingestion workers as their own process (Compose runs it to scale out).

Same settings as the API. Attaches to DATABASE_URL (or the local embedded database), applies
migrations if needed, loads the model and runs jobs until SIGTERM/SIGINT, then stops gracefully:
running jobs get WORKER_SHUTDOWN_GRACE_SECONDS to finish, and are re-queued otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import asyncpg
from prometheus_client import start_http_server

from app.config import get_settings
from app.db.embedded import EmbeddedPostgres
from app.db.migrations import apply_migrations
from app.db.pool import create_pool
from app.embedding.service import EmbeddingService
from app.ingestion.runner import IngestionWorker
from app.logging_setup import configure_logging

logger = logging.getLogger("app.worker")


async def run() -> None:
    settings = get_settings()
    embedded = None
    if settings.database_url:
        dsn = settings.database_url
    else:
        embedded = EmbeddedPostgres(settings.state_dir)
        dsn = await asyncio.to_thread(embedded.start)
    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    pool = await create_pool(settings, dsn)
    embedder = EmbeddingService.from_settings(settings)
    await embedder.load_async()
    worker = IngestionWorker(settings, dsn, pool, embedder)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.start()
    if settings.worker_metrics_port:
        # The API serves /metrics itself; a worker process has no HTTP server of its own.
        start_http_server(settings.worker_metrics_port, addr=settings.host)
    logger.info("worker process ready")
    try:
        await stop.wait()
    finally:
        logger.info("worker process stopping")
        await worker.stop()
        await pool.close()
        embedder.close()


def main() -> None:
    configure_logging(get_settings())
    asyncio.run(run())


if __name__ == "__main__":
    main()
