"""Webhook-ids of signed deliveries the engine refused, so they cannot be presented again.

Applied deliveries record their id with their effect, in their own transaction (see
chatbots/repository.record_delivery); a refusal has no transaction to join, so it is recorded here.
"""

from __future__ import annotations

import asyncpg


async def record_refused(pool: asyncpg.Pool, delivery_id: str) -> None:
    await pool.execute("INSERT INTO webhook_receipts (id) VALUES ($1) ON CONFLICT DO NOTHING", delivery_id)
