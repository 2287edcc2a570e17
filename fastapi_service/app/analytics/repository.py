"""Aggregations over usage_events, feedback and conversations, per chatbot."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import asyncpg

from app.db.pool import Connection

# Questions are grouped case- and space-insensitively.
NORMALISED = "lower(regexp_replace(btrim(question), '\\s+', ' ', 'g'))"


async def per_day(conn: Connection, chatbot_id: UUID, since: date) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS questions
        FROM usage_events WHERE chatbot_id = $1 AND created_at >= $2::date
        GROUP BY 1 ORDER BY 1
        """,
        chatbot_id,
        since,
    )


async def feedback_counts(conn: Connection, chatbot_id: UUID, since: date) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT rating, count(*) AS n FROM feedback WHERE chatbot_id = $1 AND created_at >= $2::date GROUP BY rating",
        chatbot_id,
        since,
    )
    counts = {"up": 0, "down": 0}
    counts.update({r["rating"]: r["n"] for r in rows})
    return counts


async def top_questions(conn: Connection, chatbot_id: UUID, since: date, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""
        SELECT min(question) AS question, count(*) AS count FROM usage_events
        WHERE chatbot_id = $1 AND created_at >= $2::date
        GROUP BY {NORMALISED} ORDER BY count(*) DESC, min(question) LIMIT $3
        """,
        chatbot_id,
        since,
        limit,
    )


async def unanswered(conn: Connection, chatbot_id: UUID, since: date, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""
        SELECT min(question) AS question, count(*) AS count, max(created_at) AS last_asked FROM usage_events
        WHERE chatbot_id = $1 AND created_at >= $2::date AND NOT answered
        GROUP BY {NORMALISED} ORDER BY count(*) DESC, max(created_at) DESC LIMIT $3
        """,
        chatbot_id,
        since,
        limit,
    )


async def conversations(
    conn: Connection, chatbot_id: UUID, since: date, limit: int, offset: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT s.id, s.created_at, s.last_active_at,
               coalesce(json_agg(json_build_object(
                   'id', m.id, 'role', m.role, 'content', m.content, 'sources', m.sources,
                   'generator', m.generator, 'created_at', m.created_at, 'rating', f.rating
               ) ORDER BY m.created_at, m.role DESC) FILTER (WHERE m.id IS NOT NULL), '[]') AS messages
        FROM chat_sessions s
        LEFT JOIN chat_messages m ON m.session_id = s.id AND m.chatbot_id = s.chatbot_id
        LEFT JOIN feedback f ON f.message_id = m.id AND f.chatbot_id = s.chatbot_id
        WHERE s.chatbot_id = $1 AND s.last_active_at >= $2::date
        GROUP BY s.id ORDER BY s.last_active_at DESC LIMIT $3 OFFSET $4
        """,
        chatbot_id,
        since,
        limit,
        offset,
    )


async def key_usage(conn: Connection, chatbot_id: UUID) -> list[asyncpg.Record]:
    """When each of the chatbot's keys was last used (None: never), for Odoo's key list."""
    return await conn.fetch(
        "SELECT id, last_used_at FROM api_keys WHERE chatbot_id = $1 ORDER BY id",
        chatbot_id,
    )
