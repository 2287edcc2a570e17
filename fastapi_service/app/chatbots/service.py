"""Rules for applying chatbot deliveries: newest version wins, tombstones, replays are no-ops;
and the background re-index of a chatbot's keyword index when its language changes.

The delivery protocol itself (dedupe -> lock -> stale check -> apply) is internal/delivery.py's.
"""

from __future__ import annotations

import logging
import time
from uuid import UUID

import asyncpg

from app.chatbots import repository
from app.chatbots.schemas import Applied, ChatbotPut
from app.db.pool import Connection
from app.errors import Unprocessable
from app.ingestion import queue
from app.internal.delivery import Ignored, apply_once
from app.languages import text_search_config
from app.observability.metrics import LANGUAGE_REINDEX_JOBS, LANGUAGE_REINDEX_SECONDS

logger = logging.getLogger(__name__)


async def align_languages(pool: asyncpg.Pool) -> int:
    """Queue the re-index of every chatbot whose keyword index is not in its language's
    configuration: a database from before per-language search (every chunk was indexed
    `english`), a mapping changed by an upgrade, or a re-index job that failed for good. Once per
    start-up; nothing is re-indexed here (the engine is ready at once, searches use the old index
    until each job commits). Returns how many were queued."""
    async with pool.acquire() as conn:
        misaligned = [r["id"] for r in await repository.chatbot_languages(conn) if not _aligned(r)]
        for chatbot_id in misaligned:
            async with conn.transaction():
                await queue.defer_reindex(conn, chatbot_id)
    if misaligned:
        logger.info("queued the re-index of chatbots not in their language", extra={"chatbots": len(misaligned)})
    return len(misaligned)


def _aligned(row: asyncpg.Record) -> bool:
    return bool(row["ts_config"] == text_search_config(row["language"]))


async def reindex_language(pool: asyncpg.Pool, chatbot_id: UUID) -> str:
    """The `reindex_chatbot` job: bring the chatbot's keyword index to its language's configuration.

    One transaction under the chatbot's row lock: the language is read here, when the job runs (a
    later change is never undone), and the configuration and every chunk change together, so a
    search sees the old index or the new one, never a mix. An ingestion commit takes the row lock
    shared, so its chunks are written before this (and re-indexed) or after (in the new
    configuration). Idempotent: an aligned or deleted chatbot is left alone. Raises on failure
    (procrastinate retries; the language stays stored, so a later PUT or start-up queues it again).
    """
    started = time.perf_counter()
    try:
        async with pool.acquire() as conn, conn.transaction():
            row = await repository.lock_chatbot_language(conn, chatbot_id)
            config, chunks = None, 0
            if row is None or row["deleted"]:
                outcome = "deleted"
            elif _aligned(row):
                outcome, config = "aligned", row["ts_config"]
            else:
                config = text_search_config(row["language"])
                await repository.set_ts_config(conn, chatbot_id, config)
                chunks = await repository.reindex_chunks(conn, chatbot_id, config)
                outcome = "reindexed"
    except Exception:
        LANGUAGE_REINDEX_JOBS.labels("failed").inc()
        logger.exception("re-indexing a chatbot in its language failed", extra={"chatbot": str(chatbot_id)})
        raise
    seconds = time.perf_counter() - started
    LANGUAGE_REINDEX_JOBS.labels(outcome).inc()
    if outcome == "reindexed":
        LANGUAGE_REINDEX_SECONDS.observe(seconds)
    logger.info(
        "chatbot keyword index in its language",
        extra={
            "chatbot": str(chatbot_id),
            "outcome": outcome,
            "ts_config": config,
            "chunks": chunks,
            "seconds": round(seconds, 3),
        },
    )
    return outcome


def _answer(outcome: Applied | Ignored) -> Applied:
    if isinstance(outcome, Ignored):
        return Applied(applied=False, reason=outcome.reason, detail=outcome.detail)
    return outcome


async def put_chatbot(conn: Connection, delivery_id: str, chatbot_id: UUID, body: ChatbotPut) -> Applied:
    async def apply(_current: asyncpg.Record | None) -> Applied:
        if await repository.keys_of_other_chatbots(conn, chatbot_id, body):
            raise Unprocessable("api_keys: a key id or hash already belongs to another chatbot")
        ts_config = await repository.upsert_chatbot(conn, chatbot_id, body)
        await repository.replace_keys(conn, chatbot_id, body)
        # A new language keeps the current index, and its re-index is queued in this transaction
        # (committed with the language, or not at all): a PUT costs the same for any chatbot size.
        if ts_config != text_search_config(body.language):
            await queue.defer_reindex(conn, chatbot_id)
        return Applied(applied=True)

    return _answer(
        await apply_once(conn, delivery_id, body.version, lambda: repository.lock_chatbot(conn, chatbot_id), apply)
    )


async def delete_chatbot(conn: Connection, delivery_id: str, chatbot_id: UUID, version: int) -> Applied:
    async def apply(_current: asyncpg.Record | None) -> Applied:
        await repository.tombstone_chatbot(conn, chatbot_id, version)
        return Applied(applied=True)

    return _answer(
        await apply_once(conn, delivery_id, version, lambda: repository.lock_chatbot(conn, chatbot_id), apply)
    )
