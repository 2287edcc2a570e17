"""SQL of handoffs: the session's mark, the transcript sent along, and the delivery outbox."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from app.db.pool import Connection


async def mark_session(conn: Connection, chatbot_id: UUID, session_id: UUID, reason: str) -> bool:
    """Mark the session as handed off; False when it already was (a second request is a no-op)."""
    result = await conn.execute(
        "UPDATE chat_sessions SET handoff_at = now(), handoff_reason = $3"
        " WHERE id = $1 AND chatbot_id = $2 AND handoff_at IS NULL",
        session_id,
        chatbot_id,
        reason,
    )
    return bool(result.endswith(" 1"))


async def session_exists(conn: Connection, chatbot_id: UUID, session_id: UUID, key_kind: str) -> bool:
    # A publishable key reaches only sessions started with a publishable key (as in app/chat).
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM chat_sessions WHERE id = $1 AND chatbot_id = $2"
            " AND ($3 = 'secret' OR key_kind = 'publishable'))",
            session_id,
            chatbot_id,
            key_kind,
        )
    )


async def last_messages(conn: Connection, session_id: UUID, limit: int) -> list[asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT role, content, created_at FROM chat_messages WHERE session_id = $1"
        " ORDER BY created_at DESC, role DESC LIMIT $2",
        session_id,
        limit,
    )
    return list(reversed(rows))


async def queue_notice(conn: Connection, chatbot_id: UUID, session_id: UUID, payload: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO handoff_outbox (chatbot_id, session_id, payload) VALUES ($1, $2, $3)"
        " ON CONFLICT (session_id) DO NOTHING",
        chatbot_id,
        session_id,
        payload,
    )


async def lease_due(pool: asyncpg.Pool, batch: int, lease_seconds: float) -> list[asyncpg.Record]:
    return await pool.fetch(
        """
        UPDATE handoff_outbox SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
        WHERE id IN (SELECT id FROM handoff_outbox WHERE next_attempt_at <= now()
                     ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING id, session_id, payload, attempts
        """,
        batch,
        lease_seconds,
    )


async def delete_notice(pool: asyncpg.Pool, row_id: int) -> None:
    await pool.execute("DELETE FROM handoff_outbox WHERE id = $1", row_id)


async def reschedule(pool: asyncpg.Pool, row_id: int, error: str, delay_seconds: float) -> None:
    await pool.execute(
        "UPDATE handoff_outbox SET last_error = $2, next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
        row_id,
        error,
        delay_seconds,
    )
