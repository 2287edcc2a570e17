"""All SQL touching the `sources` table and a source's chunks from the API side."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from app.db.pool import Connection


async def lock_chatbot_shared(conn: Connection, chatbot_id: UUID) -> asyncpg.Record | None:
    """FOR SHARE: source writes of one chatbot run in parallel, but not alongside its DELETE."""
    return await conn.fetchrow("SELECT id, deleted FROM chatbots WHERE id = $1 FOR SHARE", chatbot_id)


async def lock_source(conn: Connection, source_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, chatbot_id, version, deleted, state, kind, name, spec, indexed_version, chunk_count, indexed_at"
        " FROM sources WHERE id = $1 FOR UPDATE",
        source_id,
    )


async def upsert_source(
    conn: Connection,
    *,
    source_id: UUID,
    chatbot_id: UUID,
    version: int,
    kind: str,
    name: str,
    spec: dict[str, Any],
    content: bytes | None,
    state: str,
    error: str | None,
) -> None:
    """Record the desired version. The serving chunks (indexed_version) are left alone."""
    await conn.execute(
        """
        INSERT INTO sources (id, chatbot_id, version, deleted, kind, name, spec, content, state, error, updated_at)
        VALUES ($1, $2, $3, false, $4, $5, $6, $7, $8, $9, now())
        ON CONFLICT (id) DO UPDATE SET
            version = EXCLUDED.version, deleted = false, kind = EXCLUDED.kind, name = EXCLUDED.name,
            spec = EXCLUDED.spec, content = EXCLUDED.content, state = EXCLUDED.state, error = EXCLUDED.error,
            next_refresh_at = NULL, updated_at = now()
        """,
        source_id,
        chatbot_id,
        version,
        kind,
        name,
        spec,
        content,
        state,
        error,
    )


async def update_metadata(conn: Connection, source_id: UUID, version: int, name: str) -> None:
    """A new version whose content is what is indexed already: its chunks serve it as they are."""
    await conn.execute(
        "UPDATE sources SET version = $2, indexed_version = $2, name = $3, updated_at = now() WHERE id = $1",
        source_id,
        version,
        name,
    )


async def tombstone_source(conn: Connection, source_id: UUID, chatbot_id: UUID, version: int) -> None:
    """Delete the source's chunks and keep a versioned tombstone, in the caller's transaction."""
    await conn.execute("DELETE FROM chunks WHERE source_id = $1", source_id)
    await conn.execute("DELETE FROM chunk_staging WHERE source_id = $1", source_id)
    await conn.execute("DELETE FROM source_status_outbox WHERE source_id = $1", source_id)
    await conn.execute(
        """
        INSERT INTO sources (id, chatbot_id, version, deleted, kind, state, updated_at)
        VALUES ($1, $2, $3, true, 'document', 'ready', now())
        ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, deleted = true, content = NULL,
            spec = '{}', chunk_count = 0, indexed_version = NULL, indexed_at = NULL, next_refresh_at = NULL,
            state = 'ready', error = NULL, updated_at = now()
        """,
        source_id,
        chatbot_id,
        version,
    )


async def list_sources(conn: Connection, chatbot_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT id, version, kind, name, state, chunk_count, error, indexed_version, indexed_at, chunks_done, chunks_total
        FROM sources WHERE chatbot_id = $1 AND NOT deleted ORDER BY created_at, id
        """,
        chatbot_id,
    )
