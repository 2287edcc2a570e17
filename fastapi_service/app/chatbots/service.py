"""Rules for applying chatbot deliveries: newest version wins, tombstones, replays are no-ops.

The delivery protocol itself (dedupe -> lock -> stale check -> apply) is internal/delivery.py's.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from app.chatbots import repository
from app.chatbots.schemas import Applied, ChatbotPut
from app.db.pool import Connection
from app.errors import Unprocessable
from app.internal.delivery import Ignored, apply_once


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
