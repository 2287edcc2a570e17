"""Rules for applying chatbot deliveries: newest version wins, tombstones, replays are no-ops.

The delivery protocol itself (dedupe -> lock -> stale check -> apply) is internal/delivery.py's.
"""

from __future__ import annotations

import logging
from uuid import UUID

import asyncpg

from app.chatbots import repository
from app.chatbots.schemas import Applied, ChatbotPut
from app.db.pool import Connection
from app.errors import Unprocessable
from app.internal.delivery import Ignored, apply_once
from app.languages import text_search_config

logger = logging.getLogger(__name__)


async def align_languages(pool: asyncpg.Pool) -> int:
    """Re-index the chatbots whose keyword index is not in their language's configuration: a
    database from before per-language search (every chunk was indexed `english`), or a mapping
    changed by an upgrade. Once per start-up, each chatbot in its own transaction under its row
    lock (so a PUT arriving meanwhile is not undone); returns how many were re-indexed."""
    async with pool.acquire() as conn:
        rows = await repository.chatbot_languages(conn)
        aligned = 0
        for row in rows:
            config = text_search_config(row["language"])
            if row["ts_config"] == config:
                continue
            async with conn.transaction():
                if await repository.lock_chatbot(conn, row["id"]) is None:
                    continue
                if await repository.set_ts_config(conn, row["id"], row["language"], config):
                    chunks = await repository.reindex_chunks(conn, row["id"], config)
                    aligned += 1
                    logger.info(
                        "keyword index re-indexed in the chatbot's language",
                        extra={"chatbot": str(row["id"]), "ts_config": config, "chunks": chunks},
                    )
        return aligned


def _answer(outcome: Applied | Ignored) -> Applied:
    if isinstance(outcome, Ignored):
        return Applied(applied=False, reason=outcome.reason, detail=outcome.detail)
    return outcome


async def put_chatbot(conn: Connection, delivery_id: str, chatbot_id: UUID, body: ChatbotPut) -> Applied:
    async def apply(_current: asyncpg.Record | None) -> Applied:
        if await repository.keys_of_other_chatbots(conn, chatbot_id, body):
            raise Unprocessable("api_keys: a key id or hash already belongs to another chatbot")
        await repository.upsert_chatbot(conn, chatbot_id, body)
        await repository.replace_keys(conn, chatbot_id, body)
        # A new language re-indexes the chatbot's chunks in this transaction (a no-op otherwise):
        # searches see the old index or the new one, never a mix, and nothing is left half done.
        await repository.reindex_chunks(conn, chatbot_id, text_search_config(body.language))
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
