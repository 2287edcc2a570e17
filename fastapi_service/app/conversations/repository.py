"""SQL over chat_sessions, chat_messages, usage_events, feedback and unanswered_handled.

Every query is scoped by chatbot id. Days are UTC days; `since` is inclusive and `until` exclusive.
"""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

import asyncpg

from app.db.pool import Connection

# Questions are compared case- and space-insensitively (the key of unanswered_handled).
NORMALISED = "lower(regexp_replace(btrim(question), '\\s+', ' ', 'g'))"

Rating = Literal["up", "down", "none"]


async def list_sessions(
    conn: Connection,
    chatbot_id: UUID,
    *,
    since: date,
    until: date,
    rating: Rating | None,
    unanswered: bool | None,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    """One page of sessions active in [since, until), newest first, and how many match in all."""
    rows = await conn.fetch(
        """
        WITH summary AS (
            SELECT s.id, s.created_at, s.last_active_at, s.handoff_at,
                   count(*) FILTER (WHERE m.role = 'user') AS turns,
                   (array_agg(m.content ORDER BY m.created_at) FILTER (WHERE m.role = 'user'))[1] AS first_question,
                   count(f.message_id) FILTER (WHERE f.rating = 'up') AS thumbs_up,
                   count(f.message_id) FILTER (WHERE f.rating = 'down') AS thumbs_down,
                   coalesce(array_agg(DISTINCT m.generator) FILTER (WHERE m.generator IS NOT NULL), '{}')
                       AS generators,
                   (SELECT count(*) FROM usage_events u
                    WHERE u.session_id = s.id AND u.chatbot_id = s.chatbot_id AND NOT u.answered) AS unanswered
            FROM chat_sessions s
            LEFT JOIN chat_messages m ON m.session_id = s.id AND m.chatbot_id = s.chatbot_id
            LEFT JOIN feedback f ON f.message_id = m.id AND f.chatbot_id = s.chatbot_id
            WHERE s.chatbot_id = $1 AND s.last_active_at >= $2::date AND s.last_active_at < $3::date
            GROUP BY s.id
        )
        SELECT *, count(*) OVER () AS total FROM summary
        WHERE turns > 0
          AND ($4::text IS NULL
               OR ($4 = 'up' AND thumbs_up > 0) OR ($4 = 'down' AND thumbs_down > 0)
               OR ($4 = 'none' AND thumbs_up = 0 AND thumbs_down = 0))
          AND ($5::boolean IS NULL OR (unanswered > 0) = $5)
        ORDER BY last_active_at DESC, id
        LIMIT $6 OFFSET $7
        """,
        chatbot_id,
        since,
        until,
        rating,
        unanswered,
        limit,
        offset,
    )
    total = rows[0]["total"] if rows else await _count_when_page_is_empty(conn, chatbot_id, since, until, offset)
    return list(rows), total


async def _count_when_page_is_empty(conn: Connection, chatbot_id: UUID, since: date, until: date, offset: int) -> int:
    # An empty page past the end still reports the total, so a pager can step back. Only needed
    # when offset > 0; the filters are not re-applied (an upper bound is enough to page back).
    if offset == 0:
        return 0
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM chat_sessions WHERE chatbot_id = $1 AND last_active_at >= $2::date"
            " AND last_active_at < $3::date",
            chatbot_id,
            since,
            until,
        )
    )


async def find_session(conn: Connection, chatbot_id: UUID, session_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, created_at, last_active_at, handoff_at, handoff_reason FROM chat_sessions"
        " WHERE id = $1 AND chatbot_id = $2",
        session_id,
        chatbot_id,
    )


async def transcript(conn: Connection, chatbot_id: UUID, session_id: UUID) -> list[asyncpg.Record]:
    """Messages in order, each answer with its sources, whether it was answered, and its feedback."""
    return await conn.fetch(
        """
        SELECT m.id, m.role, m.content, m.sources, m.generator, m.created_at,
               u.answered, u.latency_ms, f.rating, f.comment
        FROM chat_messages m
        LEFT JOIN usage_events u ON u.message_id = m.id AND u.chatbot_id = m.chatbot_id
        LEFT JOIN feedback f ON f.message_id = m.id AND f.chatbot_id = m.chatbot_id
        WHERE m.session_id = $1 AND m.chatbot_id = $2
        ORDER BY m.created_at, m.role DESC
        """,
        session_id,
        chatbot_id,
    )


async def unanswered_questions(conn: Connection, chatbot_id: UUID, since: date, limit: int) -> list[asyncpg.Record]:
    """Distinct unanswered questions (normalised) not handled since they were last asked."""
    return await conn.fetch(
        f"""
        SELECT {NORMALISED} AS key, min(question) AS question, count(*) AS count, max(created_at) AS last_asked
        FROM usage_events u
        WHERE chatbot_id = $1 AND created_at >= $2::date AND NOT answered
          AND NOT EXISTS (SELECT 1 FROM unanswered_handled h
                          WHERE h.chatbot_id = u.chatbot_id AND h.question_key = {NORMALISED}
                            AND h.handled_at >= u.created_at)
        GROUP BY 1 ORDER BY count(*) DESC, max(created_at) DESC LIMIT $3
        """,
        chatbot_id,
        since,
        limit,
    )


async def mark_handled(conn: Connection, chatbot_id: UUID, questions: list[str]) -> int:
    """Record the questions as handled now; returns how many distinct keys were written."""
    result = await conn.execute(
        f"""
        INSERT INTO unanswered_handled (chatbot_id, question_key, handled_at)
        SELECT DISTINCT $1::uuid, {NORMALISED}, now() FROM unnest($2::text[]) AS question
        ON CONFLICT (chatbot_id, question_key) DO UPDATE SET handled_at = EXCLUDED.handled_at
        """,
        chatbot_id,
        questions,
    )
    return int(result.split()[-1])


async def daily_usage(conn: Connection, chatbot_id: UUID, since: date, until: date) -> list[asyncpg.Record]:
    """One row per UTC day with at least one question: counts, feedback, p50 latency, generator mix."""
    return await conn.fetch(
        """
        WITH events AS (
            SELECT (u.created_at AT TIME ZONE 'UTC')::date AS day, u.session_id, u.answered, u.latency_ms,
                   u.generator, f.rating
            FROM usage_events u
            LEFT JOIN feedback f ON f.message_id = u.message_id AND f.chatbot_id = u.chatbot_id
            WHERE u.chatbot_id = $1 AND u.created_at >= $2::date AND u.created_at < $3::date
        ), mix AS (
            SELECT day, jsonb_object_agg(generator, n) AS generators
            FROM (SELECT day, generator, count(*) AS n FROM events GROUP BY 1, 2) g GROUP BY day
        )
        SELECT e.day, count(*) AS questions, count(DISTINCT e.session_id) AS sessions,
               count(*) FILTER (WHERE NOT e.answered) AS unanswered,
               count(*) FILTER (WHERE e.rating = 'up') AS thumbs_up,
               count(*) FILTER (WHERE e.rating = 'down') AS thumbs_down,
               percentile_disc(0.5) WITHIN GROUP (ORDER BY e.latency_ms) AS p50_latency_ms,
               (array_agg(mix.generators))[1] AS generators
        FROM events e JOIN mix ON mix.day = e.day
        GROUP BY e.day ORDER BY e.day
        """,
        chatbot_id,
        since,
        until,
    )
