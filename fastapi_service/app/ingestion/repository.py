"""All SQL of the ingestion jobs: claim a source version, swap its chunks, record failures."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
import numpy as np

from app.db.pool import Connection
from app.ingestion.chunking import Chunk


async def lock_source(conn: Connection, source_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """
        SELECT id, chatbot_id, version, deleted, kind, name, spec, content, state, indexed_version, chunk_count,
               pages_indexed, pages_skipped
        FROM sources WHERE id = $1 FOR UPDATE
        """,
        source_id,
    )


async def lock_chatbot_config(conn: Connection, chatbot_id: UUID) -> str:
    """The chatbot's text-search configuration, its row locked shared until the caller commits: a
    language change (which locks it for update and re-indexes the chatbot's chunks) waits for
    the chunks this transaction writes, or this transaction waits for it and reads the new one."""
    config = await conn.fetchval("SELECT ts_config FROM chatbots WHERE id = $1 FOR SHARE", chatbot_id)
    return str(config or "english")


async def set_crawl_pages(conn: Connection, source_id: UUID, indexed: int, skipped: int) -> None:
    await conn.execute(
        "UPDATE sources SET pages_indexed = $2, pages_skipped = $3 WHERE id = $1", source_id, indexed, skipped
    )


def crawl_pages(source: asyncpg.Record) -> dict[str, int] | None:
    """{indexed, skipped} of a link's last crawl, for its status; None for documents."""
    if source["kind"] != "link" or source["pages_indexed"] is None:
        return None
    return {"indexed": source["pages_indexed"], "skipped": source["pages_skipped"] or 0}


async def set_processing(conn: Connection, source_id: UUID) -> None:
    await conn.execute(
        "UPDATE sources SET state = 'processing', error = NULL, updated_at = now() WHERE id = $1", source_id
    )


async def clear_staging(conn: Connection | asyncpg.Pool, source_id: UUID) -> None:
    await conn.execute("DELETE FROM chunk_staging WHERE source_id = $1", source_id)


async def set_progress(conn: asyncpg.Pool | Connection, source_id: UUID, version: int, done: int, total: int) -> bool:
    """Record embedding progress; False when the source has moved on to another version or is deleted."""
    status = await conn.execute(
        "UPDATE sources SET chunks_done = $3, chunks_total = $4 WHERE id = $1 AND version = $2 AND NOT deleted",
        source_id,
        version,
        done,
        total,
    )
    return status == "UPDATE 1"


async def stage_chunks(
    pool: asyncpg.Pool, *, source_id: UUID, version: int, first: int, chunks: Sequence[Chunk], vectors: np.ndarray
) -> None:
    """Write one embedded batch of this version's chunks, ordinals from `first`, each with the
    context it was embedded with ('' for a plain chunk): the keyword index reads it too."""
    records = [
        (source_id, version, first + i, chunk.text, chunk.context, json.dumps(chunk.metadata), vector)
        for i, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True))
    ]
    await pool.executemany(
        "INSERT INTO chunk_staging (source_id, source_version, ordinal, content, context, metadata, embedding)"
        " VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7)",
        records,
    )


async def replace_chunks(
    conn: Connection,
    *,
    source_id: UUID,
    chatbot_id: UUID,
    version: int,
    ts_config: str,
    refresh_hours: float | None,
) -> asyncpg.Record:
    """Swap the serving chunks for this version's staged ones (caller holds the transaction and row lock)."""
    await conn.execute("DELETE FROM chunks WHERE source_id = $1", source_id)
    count = await conn.fetchval(
        """
        WITH moved AS (
            DELETE FROM chunk_staging WHERE source_id = $2 AND source_version = $3
            RETURNING ordinal, content, context, metadata, embedding
        ), inserted AS (
            INSERT INTO chunks (chatbot_id, source_id, source_version, ordinal, content, context, metadata,
                                embedding, ts_config)
            SELECT $1, $2, $3, ordinal, content, context, metadata, embedding, $4 FROM moved ORDER BY ordinal
            RETURNING 1
        )
        SELECT count(*) FROM inserted
        """,
        chatbot_id,
        source_id,
        version,
        ts_config,
    )
    await conn.execute("DELETE FROM chunk_staging WHERE source_id = $1", source_id)
    row = await conn.fetchrow(
        """
        UPDATE sources SET state = 'ready', error = NULL, indexed_version = $2, chunk_count = $3,
            indexed_at = now(), chunks_done = NULL, chunks_total = NULL,
            next_refresh_at = CASE WHEN $4::float8 > 0 THEN now() + make_interval(secs => $4::float8 * 3600) END,
            updated_at = now()
        WHERE id = $1 RETURNING indexed_at
        """,
        source_id,
        version,
        count,
        refresh_hours or 0.0,
    )
    assert row is not None  # the caller holds the row lock: the source exists
    return row


async def set_failed(conn: Connection, source_id: UUID, error: str, refresh_hours: float | None) -> None:
    """The previous version's chunks (if any) keep serving; a link still gets its next refresh."""
    await conn.execute(
        """
        UPDATE sources SET state = 'failed', error = $2, updated_at = now(), chunks_done = NULL, chunks_total = NULL,
            next_refresh_at = CASE WHEN $3::float8 > 0 THEN now() + make_interval(secs => $3::float8 * 3600) END
        WHERE id = $1
        """,
        source_id,
        error[:2000],
        refresh_hours or 0.0,
    )


async def due_links(conn: Connection, limit: int = 100) -> list[asyncpg.Record]:
    """Claim links whose refresh is due (clearing next_refresh_at), for the sweep to queue."""
    return await conn.fetch(
        """
        UPDATE sources SET next_refresh_at = NULL
        WHERE id IN (SELECT id FROM sources WHERE kind = 'link' AND NOT deleted AND next_refresh_at <= now()
                     ORDER BY next_refresh_at LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING id, version
        """,
        limit,
    )


async def queue_depth(conn: Connection, queue: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status::text, count(*) AS n FROM procrastinate_jobs WHERE queue_name = $1"
        " AND status IN ('todo', 'doing') GROUP BY status",
        queue,
    )
    counts: dict[str, Any] = {r["status"]: r["n"] for r in rows}
    return {"todo": int(counts.get("todo", 0)), "doing": int(counts.get("doing", 0))}
