"""The durable job queue: procrastinate (PostgreSQL) — deferral SQL and the worker's task app.

Two tasks: `ingest_source` (queue `ingestion`) and `reindex_chatbot` (queue `reindex`: re-index a
chatbot's keyword index in its language's text-search configuration, app/chatbots/service.py).
Jobs are deferred with procrastinate's own SQL function inside the caller's transaction, so a
source row and its job are committed together or not at all (no orphaned "queued" source).
- `lock = source id`: one source's jobs never run concurrently, and run in order.
- `queueing_lock = "{source}:{version}[:refresh]"`: at most one waiting job per (source, version).
- Fairness between chatbots: a job's priority is lowered by the number of jobs its chatbot already
  has waiting or running, so one tenant's backlog cannot keep another tenant's first upload waiting
  (procrastinate fetches by priority, then age). Running jobs are not pre-empted.
- `reindex_chatbot`: `lock = queueing_lock = "reindex:{chatbot}"`: one chatbot's re-index jobs
  never run concurrently, and at most one waits (it reads the chatbot's language when it runs, so
  a waiting job covers every change made before it starts).
- Retries (both tasks): procrastinate's RetryStrategy, exponential backoff; stalled jobs (worker stopped
  heartbeating, e.g. SIGKILL) are re-queued by the workers' maintenance loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import asyncpg
import procrastinate

from app.config import Settings
from app.db.pool import Connection

QUEUE = "ingestion"
TASK_NAME = "ingest_source"
REINDEX_QUEUE = "reindex"
REINDEX_TASK_NAME = "reindex_chatbot"
QUEUES = [QUEUE, REINDEX_QUEUE]  # what the workers run (a list: procrastinate passes it to SQL as an array)
PRIORITY_CHANGE = 0  # a tenant's upload runs before...
PRIORITY_REFRESH = -10  # ...a scheduled link refresh
MAX_BACKLOG_PENALTY = 1000


async def defer_ingest(conn: Connection, source_id: UUID, version: int, *, refresh: bool = False) -> int | None:
    """Queue the job for (source, version) in the caller's transaction; return its id.

    If that job is already waiting, return the waiting job's id instead of a duplicate.
    """
    queueing_lock = f"{source_id}:{version}" + (":refresh" if refresh else "")
    args = {"source": str(source_id), "version": version, "refresh": refresh}
    backlog = await conn.fetchval(
        """
        SELECT count(*) FROM procrastinate_jobs j JOIN sources s ON s.id = (j.args->>'source')::uuid
        WHERE j.queue_name = $1 AND j.status IN ('todo', 'doing')
          AND s.chatbot_id = (SELECT chatbot_id FROM sources WHERE id = $2)
        """,
        QUEUE,
        source_id,
    )
    priority = (PRIORITY_REFRESH if refresh else PRIORITY_CHANGE) - min(int(backlog), MAX_BACKLOG_PENALTY)
    return await _defer(conn, QUEUE, TASK_NAME, priority, str(source_id), queueing_lock, args)


async def defer_reindex(conn: Connection, chatbot_id: UUID) -> int | None:
    """Queue the re-index of the chatbot's keyword index in the caller's transaction; return its id,
    or the id of the one already waiting (it reads the chatbot's language when it runs)."""
    lock = f"reindex:{chatbot_id}"
    args = {"chatbot": str(chatbot_id)}
    return await _defer(conn, REINDEX_QUEUE, REINDEX_TASK_NAME, PRIORITY_CHANGE, lock, lock, args)


async def _defer(
    conn: Connection, queue: str, task: str, priority: int, lock: str, queueing_lock: str, args: dict[str, Any]
) -> int | None:
    try:
        async with conn.transaction():  # a savepoint: a duplicate must not abort the caller
            ids = await conn.fetchval(
                "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW($1, $2, $3, $4, $5, $6::jsonb, NULL)"
                "::procrastinate_job_to_defer_v1])",
                queue,
                task,
                priority,
                lock,
                queueing_lock,
                args,
            )
            return int(ids[0])
    except asyncpg.UniqueViolationError:
        waiting = await conn.fetchval(
            "SELECT id FROM procrastinate_jobs WHERE queueing_lock = $1 AND status = 'todo'", queueing_lock
        )
        return int(waiting) if waiting is not None else None


JobFunc = Callable[[UUID, int, bool, bool], Awaitable[str]]
ReindexFunc = Callable[[UUID], Awaitable[str]]


def build_job_app(dsn: str, settings: Settings, run: JobFunc, reindex: ReindexFunc) -> procrastinate.App:
    """A procrastinate App whose `ingest_source` task calls `run(source, version, refresh, last_try)`
    and whose `reindex_chatbot` task calls `reindex(chatbot)`; both retried alike."""
    connector = procrastinate.PsycopgConnector(conninfo=dsn, min_size=1, max_size=settings.worker_concurrency + 4)
    app = procrastinate.App(connector=connector)
    retry = procrastinate.RetryStrategy(
        max_attempts=settings.job_max_attempts, exponential_wait=settings.job_retry_base_seconds
    )

    @app.task(name=TASK_NAME, queue=QUEUE, pass_context=True, retry=retry)
    async def ingest_source(context: Any, source: str, version: int, refresh: bool = False) -> str:
        last_try = context.job.attempts >= settings.job_max_attempts
        return await run(UUID(source), int(version), bool(refresh), last_try)

    @app.task(name=REINDEX_TASK_NAME, queue=REINDEX_QUEUE, retry=retry)
    async def reindex_chatbot(chatbot: str) -> str:
        return await reindex(UUID(chatbot))

    return app
