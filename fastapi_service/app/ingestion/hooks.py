"""Start/stop the in-process ingestion worker with the API (WORKERS_IN_PROCESS=true)."""

from __future__ import annotations

from app.ingestion.runner import IngestionWorker
from app.resources import Resources

EXTRA_KEY = "ingestion_worker"


async def start_workers(resources: Resources) -> None:
    if not resources.settings.workers_in_process:
        return
    assert resources.pool is not None and resources.dsn is not None
    worker = IngestionWorker(resources.settings, resources.dsn, resources.pool, resources.embedder)
    resources.extras[EXTRA_KEY] = worker
    await worker.start()


async def stop_workers(resources: Resources) -> None:
    worker = resources.extras.pop(EXTRA_KEY, None)
    if worker is not None:
        await worker.stop()
