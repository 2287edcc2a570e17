"""Stopping the ingestion worker always finishes, even when a call inside it loses a cancellation
(seen when SIGTERM came right after start-up: a stop that waited forever)."""

from __future__ import annotations

import asyncio
import functools

from app.chatbots import service as chatbots_service
from app.db.pool import create_pool
from app.handoff.service import HandoffService
from app.ingestion import callbacks
from app.ingestion.runner import IngestionWorker
from tests.conftest import make_settings


async def test_stop_finishes_when_a_maintenance_call_swallows_its_cancellation(db_url, embedder, monkeypatch):
    entered = asyncio.Event()

    async def deliver_due_losing_the_cancel(*args: object, **kwargs: object) -> None:
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # the cancellation is lost, as it was inside a library at start-up

    monkeypatch.setattr(callbacks, "deliver_due", deliver_due_losing_the_cancel)
    settings = make_settings(database_url=db_url, worker_poll_seconds=0.2, worker_shutdown_grace_seconds=1)
    pool = await create_pool(settings, db_url)
    reindex = functools.partial(chatbots_service.reindex_language, pool)
    worker = IngestionWorker(settings, db_url, pool, embedder, HandoffService(pool, settings), reindex)
    try:
        await worker.start()
        await asyncio.wait_for(entered.wait(), 60)
        await asyncio.wait_for(worker.stop(), 60)  # a bound on a hang, not a speed check
    finally:
        await pool.close()
