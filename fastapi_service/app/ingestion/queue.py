"""The durable job queue: procrastinate (PostgreSQL) — deferral SQL and the worker's task app.

Jobs are deferred with procrastinate's own SQL function inside the caller's transaction, so a
source row and its job are committed together or not at all (no orphaned "queued" source).
- `lock = source id`: one source's jobs never run concurrently, and run in order.
- `queueing_lock = "{source}:{version}[:refresh]"`: at most one waiting job per (source, version).
- Fairness between chatbots: a job's priority is lowered by the number of jobs its chatbot already
  has waiting or running, so one tenant's backlog cannot keep another tenant's first upload waiting
  (procrastinate fetches by priority, then age). Running jobs are not pre-empted.
- Retries: procrastinate's RetryStrategy, exponential backoff; stalled jobs (worker stopped
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
    try:
        async with conn.transaction():  # a savepoint: a duplicate must not abort the caller
            ids = await conn.fetchval(
                "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW($1, $2, $3, $4, $5, $6::jsonb, NULL)"
                "::procrastinate_job_to_defer_v1])",
                QUEUE,
                TASK_NAME,
                priority,
                str(source_id),
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


def build_job_app(dsn: str, settings: Settings, run: JobFunc) -> procrastinate.App:
    """A procrastinate App whose `ingest_source` task calls `run(source, version, refresh, last_try)`."""
    connector = procrastinate.PsycopgConnector(conninfo=dsn, min_size=1, max_size=settings.worker_concurrency + 4)
    app = procrastinate.App(connector=connector)
    retry = procrastinate.RetryStrategy(
        max_attempts=settings.job_max_attempts, exponential_wait=settings.job_retry_base_seconds
    )

    @app.task(name=TASK_NAME, queue=QUEUE, pass_context=True, retry=retry)
    async def ingest_source(context: Any, source: str, version: int, refresh: bool = False) -> str:
        last_try = context.job.attempts >= settings.job_max_attempts
        return await run(UUID(source), int(version), bool(refresh), last_try)

    return app
