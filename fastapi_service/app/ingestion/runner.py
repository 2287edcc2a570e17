"""Run ingestion workers: procrastinate's worker plus a maintenance loop, in any process.

The workers run both queues of app/ingestion/queue.py: ingestion jobs, and the re-index of a
chatbot whose language changed (`reindex`, given by the composition root: it is the chatbots
package's, app/chatbots/service.py `reindex_language`, a layer above this one).

`IngestionWorker` is used by the API process (WORKERS_IN_PROCESS=true, via READY_HOOKS /
SHUTDOWN_HOOKS) and by `python -m app.worker`. The maintenance loop, safe to run in every
process at once (SKIP LOCKED / queueing locks), delivers status callbacks, re-queues jobs of
workers that stopped heartbeating (killed), queues due link refreshes and exports queue depth.
Stopping waits WORKER_SHUTDOWN_GRACE_SECONDS for running jobs, then aborts them; aborted jobs
are retried (re-queued) by procrastinate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from uuid import UUID

import asyncpg
import httpx
import procrastinate

from app.config import Settings
from app.embedding.service import EmbeddingService
from app.extraction import sandbox
from app.handoff.service import HandoffService
from app.ingestion import callbacks, queue, repository
from app.ingestion.service import IngestionContext, JobOutcome, run_job
from app.links.fetcher import SafeFetcher
from app.observability.metrics import INGESTION_QUEUE_DEPTH

logger = logging.getLogger(__name__)


CANCEL_RETRY_SECONDS = 1.0


async def cancel_until_done(task: asyncio.Task[None], patience: float) -> None:
    """Cancel `task` and wait for it, cancelling again every `patience` seconds: a library call
    that swallows a CancelledError (seen at start-up of the job queue's clients) must not make a
    stop hang forever."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=patience)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


class IngestionWorker:
    def __init__(
        self,
        settings: Settings,
        dsn: str,
        pool: asyncpg.Pool,
        embedder: EmbeddingService,
        handoffs: HandoffService,
        reindex: queue.ReindexFunc,
        fetcher: SafeFetcher | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.context = IngestionContext(settings, pool, embedder, fetcher or SafeFetcher(settings))
        self.job_app: procrastinate.App = queue.build_job_app(dsn, settings, self._run, reindex)
        self.callback_client = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        self.handoffs = handoffs  # its notices to Odoo go out with the status callbacks
        self._worker_task: asyncio.Task[None] | None = None
        self._maintenance_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def _run(self, source_id: UUID, version: int, refresh: bool, last_try: bool) -> JobOutcome:
        return await run_job(self.context, source_id, version, refresh, last_try)

    async def start(self) -> None:
        # Load the model (its slow first forward pass included) and start the model threads here
        # rather than in the first tenant's job.
        try:
            await self.context.embedder.embed(["warm-up"], purpose="warmup")
        except Exception:  # the model's own load error is reported by /readyz; jobs will fail with it
            logger.warning("embedding warm-up failed", exc_info=True)
        await self.job_app.open_async()
        s = self.settings
        self._worker_task = asyncio.create_task(
            self.job_app.run_worker_async(
                queues=queue.QUEUES,
                concurrency=s.worker_concurrency,
                install_signal_handlers=False,
                shutdown_graceful_timeout=s.worker_shutdown_grace_seconds,
                update_heartbeat_interval=s.worker_heartbeat_seconds,
                stalled_worker_timeout=s.worker_stalled_seconds,
                listen_notify=True,
                fetch_job_polling_interval=5.0,
            ),
            name="ingestion-worker",
        )
        self._maintenance_task = asyncio.create_task(self._maintenance(), name="ingestion-maintenance")
        logger.info("ingestion worker started", extra={"concurrency": s.worker_concurrency})

    async def stop(self) -> None:
        self._stopping.set()  # the maintenance loop ends at its next step even if a cancel is lost
        if self._maintenance_task is not None:
            await cancel_until_done(self._maintenance_task, CANCEL_RETRY_SECONDS)
        if self._worker_task is not None:
            # procrastinate: graceful stop (running jobs get the grace), then abort -> retried
            await cancel_until_done(self._worker_task, self.settings.worker_shutdown_grace_seconds + 10)
        with contextlib.suppress(Exception):
            await self.job_app.close_async()
        await self.callback_client.aclose()
        await self.context.fetcher.aclose()
        await sandbox.close_sandboxes()
        logger.info("ingestion worker stopped")

    async def wait(self) -> None:
        """Until the worker stops on its own (it normally runs until `stop`)."""
        assert self._worker_task is not None
        await self._worker_task

    async def _maintenance(self) -> None:
        s = self.settings
        last_stalled = last_refresh = 0.0
        while not self._stopping.is_set():
            now = time.monotonic()
            try:
                await callbacks.deliver_due(self.pool, s, self.callback_client)
                await self.handoffs.deliver_due(self.callback_client)
                if now - last_stalled >= min(s.worker_stalled_seconds / 2, 15):
                    last_stalled = now
                    await self.requeue_stalled()
                if now - last_refresh >= s.link_refresh_sweep_seconds:
                    last_refresh = now
                    await self.queue_due_refreshes()
                async with self.pool.acquire() as conn:
                    for state, n in (await repository.queue_depth(conn, queue.QUEUE)).items():
                        INGESTION_QUEUE_DEPTH.labels(state).set(n)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("ingestion maintenance failed; will try again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), s.worker_poll_seconds)

    async def requeue_stalled(self) -> int:
        manager = self.job_app.job_manager
        stalled = [
            job
            for name in queue.QUEUES
            for job in await manager.get_stalled_jobs(
                queue=name, seconds_since_heartbeat=self.settings.worker_stalled_seconds
            )
        ]
        count = 0
        for job in stalled:
            try:
                await manager.retry_job(job)
                count += 1
                logger.warning(
                    "re-queued a job of a stopped worker", extra={"job": job.id, "job_args": job.task_kwargs}
                )
            except Exception as exc:  # another process re-queued it first
                logger.debug("stalled job not re-queued", extra={"job": job.id, "error": str(exc)})
        return count

    async def queue_due_refreshes(self) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            due = await repository.due_links(conn)
            for row in due:
                await queue.defer_ingest(conn, row["id"], row["version"], refresh=True)
        return len(due)
