"""Rules for applying chatbot deliveries: newest version wins, tombstones, replays are no-ops."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from app.chatbots import repository
from app.chatbots.schemas import Applied, ChatbotPut
from app.errors import Unprocessable


async def put_chatbot(conn: asyncpg.Connection, delivery_id: str, chatbot_id: UUID, body: ChatbotPut) -> Applied:
    async with conn.transaction():
        if not await repository.record_delivery(conn, delivery_id):
            return Applied(applied=False, reason="duplicate_delivery", detail="duplicate delivery")
        current = await repository.lock_chatbot(conn, chatbot_id)
        if current is not None and current["version"] >= body.version:
            return Applied(
                applied=False, reason="stale_version", detail=f"stale version {body.version} <= {current['version']}"
            )
        if await repository.keys_of_other_chatbots(conn, chatbot_id, body):
            raise Unprocessable("api_keys: a key id or hash already belongs to another chatbot")
        await repository.upsert_chatbot(conn, chatbot_id, body)
        await repository.replace_keys(conn, chatbot_id, body)
    return Applied(applied=True)


async def delete_chatbot(conn: asyncpg.Connection, delivery_id: str, chatbot_id: UUID, version: int) -> Applied:
    async with conn.transaction():
        if not await repository.record_delivery(conn, delivery_id):
            return Applied(applied=False, reason="duplicate_delivery", detail="duplicate delivery")
        current = await repository.lock_chatbot(conn, chatbot_id)
        if current is not None and current["version"] >= version:
            return Applied(
                applied=False, reason="stale_version", detail=f"stale version {version} <= {current['version']}"
            )
        await repository.tombstone_chatbot(conn, chatbot_id, version)
    return Applied(applied=True)
