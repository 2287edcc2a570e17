"""SQL for key resolution and last-used tracking."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import asyncpg

from app.db.pool import Connection


async def find_key(conn: Connection, sha256: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """
        SELECT k.id AS key_id, k.kind, k.expires_at,
               c.id AS chatbot_id, c.name, c.language, c.prompts, c.generation,
               c.allowed_domains, c.rate_limits, c.widget
        FROM api_keys k JOIN chatbots c ON c.id = k.chatbot_id
        WHERE k.sha256 = $1 AND NOT c.deleted AND c.active
        """,
        sha256,
    )


async def touch_keys(conn: Connection, key_ids: Iterable[UUID]) -> None:
    await conn.execute(
        "UPDATE api_keys SET last_used_at = now() WHERE id = ANY($1::uuid[])"
        " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 second')",
        list(key_ids),
    )


async def allowed_domains_of_active_chatbots(conn: Connection) -> list[str]:
    rows = await conn.fetch("SELECT DISTINCT unnest(allowed_domains) AS d FROM chatbots WHERE NOT deleted AND active")
    return [r["d"] for r in rows]
