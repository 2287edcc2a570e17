"""`python -m app.worker`: ingestion workers as their own process (Compose runs it to scale out).

It runs every job queue (app/ingestion/queue.py): ingestion, and chatbots' language re-index.

Same settings and database bootstrap as the API (app/db/bootstrap.py): attaches to DATABASE_URL
(or starts the local embedded database), retrying until it is reachable, applies migrations, loads
the model and runs jobs until SIGTERM/SIGINT, then stops gracefully: running jobs get
WORKER_SHUTDOWN_GRACE_SECONDS to finish, and are re-queued otherwise. The embedded database it
started is stopped on the way out.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal

from prometheus_client import start_http_server

from app.chatbots import service as chatbots_service
from app.config import get_settings
from app.db.bootstrap import Database
from app.embedding.service import EmbeddingService
from app.handoff.service import HandoffService
from app.ingestion.runner import IngestionWorker
from app.logging_setup import configure_logging

logger = logging.getLogger("app.worker")


async def run(stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (default: until SIGTERM/SIGINT), then stop everything started here."""
    settings = get_settings()
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    database = Database(settings)
    embedder = EmbeddingService.from_settings(settings)
    try:
        # The same bootstrap as the API: retried until the database is reachable, or a signal.
        connecting = asyncio.ensure_future(database.connect())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not connecting.done():
            connecting.cancel()
            logger.info("worker process stopped before the database was reachable")
            return
        stopping.cancel()
        pool = connecting.result()
        assert database.dsn is not None
        await embedder.load_async()
        reindex = functools.partial(chatbots_service.reindex_language, pool)
        worker = IngestionWorker(settings, database.dsn, pool, embedder, HandoffService(pool, settings), reindex)
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
    finally:
        embedder.close()
        await database.close()  # the embedded server this process started is stopped too


def main() -> None:
    configure_logging(get_settings())
    asyncio.run(run())


if __name__ == "__main__":
    main()
