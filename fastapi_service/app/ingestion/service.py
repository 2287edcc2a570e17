"""One ingestion job: claim (source, version) -> extract -> chunk -> embed -> swap chunks -> status.

Supersede rule: a job works only for the version it was queued for. It exits "superseded" when,
at start or at commit, the source is deleted or carries a newer version (whose own job is queued
behind it under the same procrastinate lock). The chunk swap happens in one transaction under the
source's row lock, so queries see the old chunks or the new ones, never a mix; a failure leaves
the previous version's chunks serving. Permanent failures (bad file, refused URL) are recorded
at once; transient ones (network, database) raise so procrastinate retries them with backoff,
and are recorded as failed on the last attempt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

import asyncpg

from app.config import Settings
from app.db.pool import Connection
from app.embedding.service import EmbeddingService
from app.extraction.extractors import Limits, PageText
from app.extraction.sandbox import DocumentIn, Outcome, SandboxLimits, extract_in_sandbox
from app.ingestion import callbacks, repository
from app.ingestion.chunking import Chunk, chunk_pages
from app.links.crawler import CrawlFailed, crawl
from app.links.fetcher import SafeFetcher
from app.links.ssrf import FetchRefused
from app.observability.metrics import INGESTED_CHUNKS, INGESTION_JOB_SECONDS, INGESTION_JOBS

logger = logging.getLogger(__name__)

MB = 1024 * 1024


class JobOutcome(StrEnum):
    """How a job ended (its return value, a log field and the `outcome` label of the jobs metric)."""

    READY = "ready"  # the version is indexed and serving
    FAILED = "failed"  # it cannot be ingested as it is; the reason is recorded for the tenant
    SUPERSEDED = "superseded"  # the source was deleted or has a newer version (with its own job)
    UNCHANGED = "unchanged"  # a retry after the commit already happened (e.g. a killed worker)
    RETRIED = "retried"  # metric only: the attempt failed and the job queue runs it again


class PermanentFailure(Exception):
    """The source version cannot be ingested as it is; the message is for the tenant."""


class TransientFailure(Exception):
    """Worth retrying later (network, remote server errors)."""


@dataclass
class IngestionContext:
    settings: Settings
    pool: asyncpg.Pool
    embedder: EmbeddingService
    fetcher: SafeFetcher

    @property
    def sandbox_limits(self) -> SandboxLimits:
        s = self.settings
        return SandboxLimits(
            Limits(
                max_bytes=max(s.max_document_bytes, s.fetch_max_bytes),
                max_pages=s.max_pdf_pages,
                max_chars=s.max_extracted_chars,
                max_unzipped_bytes=s.extraction_memory_mb * MB // 2,
            ),
            timeout_seconds=s.extraction_timeout_seconds,
            memory_mb=s.extraction_memory_mb,
        )


async def run_job(ctx: IngestionContext, source_id: UUID, version: int, refresh: bool, last_try: bool) -> JobOutcome:
    """Run one attempt; return its outcome (never RETRIED: a retried attempt raises)."""
    started = time.monotonic()
    claimed = await claim(ctx, source_id, version, refresh)
    if isinstance(claimed, JobOutcome):
        INGESTION_JOBS.labels(claimed).inc()
        return claimed
    kind = claimed["kind"]
    refresh_hours = (claimed["spec"] or {}).get("refresh_hours") if kind == "link" else None
    stages: dict[str, float] = {}  # seconds per stage, logged with the outcome
    try:
        mark = time.monotonic()
        pages = await extract_pages(ctx, claimed)
        stages["extract"], mark = time.monotonic() - mark, time.monotonic()
        chunks = await asyncio.to_thread(
            chunk_pages,
            pages,
            ctx.embedder.tokenizer,
            ctx.settings.chunk_tokens,
            ctx.settings.chunk_overlap_tokens,
            ctx.settings.contextual_chunks,
        )
        del pages
        stages["chunk"], mark = time.monotonic() - mark, time.monotonic()
        if not chunks:
            raise PermanentFailure("no text could be extracted")
        cap = ctx.settings.max_chunks_per_document
        if len(chunks) > cap:
            raise PermanentFailure(f"the document makes {len(chunks):,} chunks; the limit is {cap:,}")
        await embed_and_stage(ctx, claimed, chunks)
        stages["embed"], mark = time.monotonic() - mark, time.monotonic()
        outcome = await commit(ctx, claimed, len(chunks), refresh_hours)
        stages["commit"] = time.monotonic() - mark
    except PermanentFailure as exc:
        outcome = await fail(ctx, claimed, str(exc), refresh_hours)
    except asyncpg.DataError:  # a value the database refuses will be refused again: no retries
        logger.exception("ingestion data refused by the database", extra={"source": str(source_id)})
        outcome = await fail(ctx, claimed, "the document holds data that cannot be stored", refresh_hours)
    except Exception as exc:
        if not last_try:
            INGESTION_JOBS.labels(JobOutcome.RETRIED).inc()
            raise
        # The tenant sees our own sentences only, never a raw database or library message.
        reason = str(exc) if isinstance(exc, TransientFailure) else f"an internal error ({type(exc).__name__})"
        outcome = await fail(ctx, claimed, f"gave up after retries: {reason}", refresh_hours)
    INGESTION_JOBS.labels(outcome).inc()
    INGESTION_JOB_SECONDS.labels(kind).observe(time.monotonic() - started)
    logger.info(
        "ingestion job finished",
        extra={
            "source": str(source_id),
            "version": version,
            "outcome": outcome.value,
            "seconds": {k: round(v, 3) for k, v in stages.items()},
        },
    )
    return outcome


async def lock_version(conn: Connection, source_id: UUID, version: int) -> asyncpg.Record | None:
    """Lock the source row while it still wants `version`: None when it was deleted or carries a
    newer version since (the job is superseded). In the caller's transaction."""
    source = await repository.lock_source(conn, source_id)
    if source is None or source["deleted"] or source["version"] != version:
        return None
    return source


async def claim(ctx: IngestionContext, source_id: UUID, version: int, refresh: bool) -> asyncpg.Record | JobOutcome:
    async with ctx.pool.acquire() as conn, conn.transaction():
        source = await lock_version(conn, source_id, version)
        if source is None:
            return JobOutcome.SUPERSEDED
        if not refresh and source["indexed_version"] == version and source["state"] == "ready":
            return JobOutcome.UNCHANGED
        await repository.set_processing(conn, source_id)
        await callbacks.record_status(
            conn,
            ctx.settings,
            chatbot_id=source["chatbot_id"],
            source_id=source_id,
            version=version,
            state="processing",
        )
    return source


async def extract_pages(ctx: IngestionContext, source: asyncpg.Record) -> list[PageText]:
    spec: dict[str, Any] = source["spec"] or {}
    if source["kind"] == "document":
        if source["content"] is None:
            raise PermanentFailure("the document has no content")
        document = DocumentIn(bytes(source["content"]), spec.get("filename", ""), spec.get("mimetype", ""))
        [result] = await extract_in_sandbox([document], ctx.sandbox_limits)
        if result.extracted is None:
            raise PermanentFailure(result.error or "the document could not be parsed")
        title = result.extracted.title or source["name"] or spec.get("filename") or None
        return [PageText(result.extracted.blocks, title)]

    async def extract(docs: list[DocumentIn]) -> list[Outcome]:
        return await extract_in_sandbox(docs, ctx.sandbox_limits)

    try:
        crawled = await crawl(
            ctx.fetcher,
            spec,
            extract,
            user_agent=ctx.settings.fetch_user_agent,
            sitemap_cap=ctx.settings.crawl_max_sitemap_urls,
        )
    except CrawlFailed as exc:
        raise (TransientFailure if exc.transient else PermanentFailure)(str(exc)) from exc
    except FetchRefused as exc:  # the start URL itself is not allowed
        raise PermanentFailure(str(exc)) from exc
    if crawled.skipped:
        logger.info("crawl skipped pages", extra={"source": str(source["id"]), "skipped": crawled.skipped[:20]})
    async with ctx.pool.acquire() as conn:
        await repository.set_crawl_pages(conn, source["id"], len(crawled.pages), len(crawled.skipped))
    if not crawled.pages:
        raise PermanentFailure("no page of the site could be ingested")
    return crawled.pages


async def embed_and_stage(ctx: IngestionContext, claimed: asyncpg.Record, chunks: list[Chunk]) -> None:
    """Embed `INGEST_BATCH_CHUNKS` chunks at a time and write each batch to the staging table, so
    the job holds one batch of vectors whatever the document's size; progress is recorded per batch
    and reported to Odoo at the start, at most every `PROGRESS_CALLBACK_SECONDS` and once done."""
    source_id, version = claimed["id"], claimed["version"]
    await repository.clear_staging(ctx.pool, source_id)  # a previous attempt's leftovers
    step, total = ctx.settings.ingest_batch_chunks, len(chunks)
    await report_progress(ctx, claimed, 0, total, callback=True)
    last_callback = time.monotonic()
    for first in range(0, total, step):
        part = chunks[first : first + step]
        vectors = await ctx.embedder.embed([c.embedded_text for c in part], purpose="ingest")
        await repository.stage_chunks(
            ctx.pool, source_id=source_id, version=version, first=first, chunks=part, vectors=vectors
        )
        done = first + len(part)
        due = done == total or time.monotonic() - last_callback >= ctx.settings.progress_callback_seconds
        await report_progress(ctx, claimed, done, total, callback=due)
        if due:
            last_callback = time.monotonic()


async def report_progress(
    ctx: IngestionContext, claimed: asyncpg.Record, done: int, total: int, callback: bool
) -> None:
    """Store the progress in the sources row and, when asked, queue a `processing` status carrying it,
    in one transaction; nothing is queued once the source has moved on to a newer version (its own
    status must not be replaced in the outbox by this one)."""
    source_id, version = claimed["id"], claimed["version"]
    if not callback:
        await repository.set_progress(ctx.pool, source_id, version, done, total)
        return
    async with ctx.pool.acquire() as conn, conn.transaction():
        if await repository.set_progress(conn, source_id, version, done, total):
            await callbacks.record_status(
                conn,
                ctx.settings,
                chatbot_id=claimed["chatbot_id"],
                source_id=source_id,
                version=version,
                state="processing",
                progress=(done, total),
            )


async def commit(ctx: IngestionContext, claimed: asyncpg.Record, total: int, refresh_hours: Any) -> JobOutcome:
    source_id, version = claimed["id"], claimed["version"]
    async with ctx.pool.acquire() as conn, conn.transaction():
        # The chatbot before the source, as a source PUT locks them (no deadlock with a chatbot
        # DELETE, which locks the chatbot and then updates its sources).
        ts_config = await repository.lock_chatbot_config(conn, claimed["chatbot_id"])
        source = await lock_version(conn, source_id, version)
        if source is None:
            return JobOutcome.SUPERSEDED
        row = await repository.replace_chunks(
            conn,
            source_id=source_id,
            chatbot_id=source["chatbot_id"],
            version=version,
            ts_config=ts_config,
            refresh_hours=refresh_hours,
        )
        await callbacks.record_status(
            conn,
            ctx.settings,
            chatbot_id=source["chatbot_id"],
            source_id=source_id,
            version=version,
            state="ready",
            chunks=total,
            indexed_at=row["indexed_at"],
            pages=repository.crawl_pages(source),
        )
    INGESTED_CHUNKS.inc(total)
    return JobOutcome.READY


async def fail(ctx: IngestionContext, claimed: asyncpg.Record, reason: str, refresh_hours: Any) -> JobOutcome:
    source_id, version = claimed["id"], claimed["version"]
    async with ctx.pool.acquire() as conn, conn.transaction():
        source = await lock_version(conn, source_id, version)
        if source is None:
            return JobOutcome.SUPERSEDED
        await repository.set_failed(conn, source_id, reason, refresh_hours)
        await repository.clear_staging(conn, source_id)
        await callbacks.record_status(
            conn,
            ctx.settings,
            chatbot_id=source["chatbot_id"],
            source_id=source_id,
            version=version,
            state="failed",
            chunks=source["chunk_count"],
            error=reason,
            pages=repository.crawl_pages(source),
        )
    logger.info("ingestion failed", extra={"source": str(source_id), "version": version, "reason": reason})
    return JobOutcome.FAILED
