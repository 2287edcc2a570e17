"""All SQL touching chatbots and their keys."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from app.chatbots.schemas import ChatbotPut
from app.db.pool import Connection
from app.languages import text_search_config


async def lock_chatbot(conn: Connection, chatbot_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT id, version, deleted FROM chatbots WHERE id = $1 FOR UPDATE", chatbot_id)


async def lock_chatbot_language(conn: Connection, chatbot_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT language, ts_config, deleted FROM chatbots WHERE id = $1 FOR UPDATE", chatbot_id)


async def upsert_chatbot(conn: Connection, chatbot_id: UUID, body: ChatbotPut) -> str:
    """Store the delivery; return the chatbot's text-search configuration. A new chatbot (no chunks
    yet) gets its language's; an existing one keeps its own until its re-index job (a language
    change is re-indexed in the background, app/chatbots/service.py)."""
    config = await conn.fetchval(
        """
        INSERT INTO chatbots (id, version, deleted, tenant, name, active, language, prompts, generation,
                              allowed_domains, rate_limits, widget, ts_config, updated_at)
        VALUES ($1, $2, false, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now())
        ON CONFLICT (id) DO UPDATE SET
            version = EXCLUDED.version, deleted = false, tenant = EXCLUDED.tenant, name = EXCLUDED.name,
            active = EXCLUDED.active, language = EXCLUDED.language, prompts = EXCLUDED.prompts,
            generation = EXCLUDED.generation, allowed_domains = EXCLUDED.allowed_domains,
            rate_limits = EXCLUDED.rate_limits, widget = EXCLUDED.widget, updated_at = now()
        RETURNING ts_config
        """,
        chatbot_id,
        body.version,
        body.tenant,
        body.name,
        body.active,
        body.language,
        body.prompts.model_dump(),
        body.generation.model_dump(),
        body.allowed_domains,
        body.rate_limits.model_dump(),
        body.widget.model_dump(),
        text_search_config(body.language),
    )
    return str(config)


# A re-index runs in a background job, in one statement: longer than a request's command timeout
# (DB_COMMAND_TIMEOUT) for a large chatbot (≈ 4.6 ms per chunk, docs/benchmarks.md).
REINDEX_TIMEOUT_SECONDS = 3600.0


async def reindex_chunks(conn: Connection, chatbot_id: UUID, ts_config: str) -> int:
    """Re-index the chatbot's chunks with `ts_config` (its tsv is generated from it; the BM25
    update trigger replaces their postings). In the caller's transaction, which holds the chatbot's
    row lock: an ingestion commit takes that lock (shared) before inserting chunks, so it writes
    either before this statement (and is re-indexed by it) or after (with the new configuration)."""
    status = await conn.execute(
        "UPDATE chunks SET ts_config = $2 WHERE chatbot_id = $1 AND ts_config <> $2",
        chatbot_id,
        ts_config,
        timeout=REINDEX_TIMEOUT_SECONDS,
    )
    return int(status.split()[-1])


async def chatbot_languages(conn: Connection) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT id, language, ts_config FROM chatbots WHERE NOT deleted")


async def set_ts_config(conn: Connection, chatbot_id: UUID, ts_config: str) -> None:
    """Store the configuration of the chatbot's index; the caller holds its row lock."""
    await conn.execute("UPDATE chatbots SET ts_config = $2 WHERE id = $1", chatbot_id, ts_config)


async def keys_of_other_chatbots(conn: Connection, chatbot_id: UUID, body: ChatbotPut) -> int:
    """How many of the payload's keys (by id or hash) already belong to another chatbot."""
    ids = [key_uuid(k.id) for k in body.api_keys]
    hashes = [k.sha256 for k in body.api_keys]
    count = await conn.fetchval(
        "SELECT count(*) FROM api_keys WHERE chatbot_id <> $1 AND (id = ANY($2::uuid[]) OR sha256 = ANY($3::text[]))",
        chatbot_id,
        ids,
        hashes,
    )
    return int(count)


async def replace_keys(conn: Connection, chatbot_id: UUID, body: ChatbotPut) -> None:
    """Keys not in the payload are revoked: deleted here, so they stop resolving at once."""
    keep = [k.sha256 for k in body.api_keys]
    await conn.execute(
        "DELETE FROM api_keys WHERE chatbot_id = $1 AND NOT (sha256 = ANY($2::text[]))", chatbot_id, keep
    )
    for key in body.api_keys:
        await conn.execute(
            """
            INSERT INTO api_keys (id, chatbot_id, kind, prefix, sha256, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (sha256) DO UPDATE SET kind = EXCLUDED.kind, prefix = EXCLUDED.prefix,
                expires_at = EXCLUDED.expires_at, id = EXCLUDED.id
            WHERE api_keys.chatbot_id = EXCLUDED.chatbot_id
            """,
            key_uuid(key.id),
            chatbot_id,
            key.kind,
            key.prefix,
            key.sha256,
            key.expires_at,
        )


def key_uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        import uuid

        return uuid.uuid5(uuid.NAMESPACE_URL, f"chatbot-platform:key:{value}")


async def tombstone_chatbot(conn: Connection, chatbot_id: UUID, version: int) -> None:
    """Delete everything derived from the chatbot and keep a versioned tombstone row."""
    await conn.execute(
        """
        INSERT INTO chatbots (id, version, deleted, active, updated_at) VALUES ($1, $2, true, false, now())
        ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, deleted = true, active = false,
            prompts = '{}', generation = '{}', allowed_domains = '{}', rate_limits = '{}', widget = '{}',
            updated_at = now()
        """,
        chatbot_id,
        version,
    )
    await conn.execute("DELETE FROM api_keys WHERE chatbot_id = $1", chatbot_id)
    for statement in CHATBOT_DATA_DELETES:
        await conn.execute(statement, chatbot_id)


# Other packages append "DELETE ... WHERE chatbot_id = $1" statements for the data they own
# (sessions, messages, usage...), so deleting a chatbot removes all of it in one transaction.
CHATBOT_DATA_DELETES: list[str] = [
    "DELETE FROM chunks WHERE chatbot_id = $1",
    "DELETE FROM chunk_staging WHERE source_id IN (SELECT id FROM sources WHERE chatbot_id = $1)",
    "UPDATE sources SET deleted = true, content = NULL, chunk_count = 0, indexed_version = NULL, "
    "state = 'ready', error = NULL WHERE chatbot_id = $1",
    # answering (app/chat): conversations, usage and feedback
    "DELETE FROM feedback WHERE chatbot_id = $1",
    "DELETE FROM usage_events WHERE chatbot_id = $1",
    "DELETE FROM chat_messages WHERE chatbot_id = $1",
    "DELETE FROM chat_sessions WHERE chatbot_id = $1",
    # operations (app/conversations): unanswered questions marked handled
    "DELETE FROM unanswered_handled WHERE chatbot_id = $1",
    "DELETE FROM handoff_outbox WHERE chatbot_id = $1",
]


async def get_chatbot(conn: Connection, chatbot_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM chatbots WHERE id = $1 AND NOT deleted", chatbot_id)
    return dict(row) if row else None
