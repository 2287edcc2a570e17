"""SQL for sessions, messages, usage events and feedback. Always scoped by chatbot id."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from app.db.pool import Connection


async def find_session(conn: Connection, chatbot_id: UUID, session_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, key_kind FROM chat_sessions WHERE id = $1 AND chatbot_id = $2", session_id, chatbot_id
    )


async def create_session(conn: Connection, chatbot_id: UUID, session_id: UUID, key_kind: str) -> None:
    await conn.execute(
        "INSERT INTO chat_sessions (id, chatbot_id, key_kind) VALUES ($1, $2, $3)", session_id, chatbot_id, key_kind
    )


async def count_messages(conn: Connection, session_id: UUID) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM chat_messages WHERE session_id = $1", session_id))


async def recent_messages(conn: Connection, session_id: UUID, limit: int) -> list[asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT role, content FROM chat_messages WHERE session_id = $1 ORDER BY created_at DESC, role DESC LIMIT $2",
        session_id,
        limit,
    )
    return list(reversed(rows))


async def session_messages(conn: Connection, chatbot_id: UUID, session_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT id, role, content, sources, generator, created_at FROM chat_messages
        WHERE session_id = $1 AND chatbot_id = $2 ORDER BY created_at, role DESC
        """,
        session_id,
        chatbot_id,
    )


async def store_turn(
    conn: Connection,
    *,
    chatbot_id: UUID,
    session_id: UUID,
    question_id: UUID,
    question: str,
    answer_id: UUID,
    answer: str,
    sources: list[dict[str, Any]],
    generator: str,
    answered: bool,
    latency_ms: int,
    retrieval_ms: int,
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    async with conn.transaction():
        await conn.execute(
            """
            INSERT INTO chat_messages (id, session_id, chatbot_id, role, content) VALUES ($1, $2, $3, 'user', $4)
            """,
            question_id,
            session_id,
            chatbot_id,
            question,
        )
        await conn.execute(
            """
            INSERT INTO chat_messages (id, session_id, chatbot_id, role, content, sources, generator)
            VALUES ($1, $2, $3, 'assistant', $4, $5, $6)
            """,
            answer_id,
            session_id,
            chatbot_id,
            answer,
            sources,
            generator,
        )
        await conn.execute("UPDATE chat_sessions SET last_active_at = now() WHERE id = $1", session_id)
        await conn.execute(
            """
            INSERT INTO usage_events (chatbot_id, session_id, message_id, question, generator, answered, sources,
                                      latency_ms, retrieval_ms, prompt_tokens, completion_tokens)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            """,
            chatbot_id,
            session_id,
            answer_id,
            question,
            generator,
            answered,
            len(sources),
            latency_ms,
            retrieval_ms,
            prompt_tokens,
            completion_tokens,
        )


async def assistant_message_exists(conn: Connection, chatbot_id: UUID, message_id: UUID) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM chat_messages WHERE id = $1 AND chatbot_id = $2 AND role = 'assistant')",
            message_id,
            chatbot_id,
        )
    )


async def upsert_feedback(
    conn: Connection, chatbot_id: UUID, message_id: UUID, rating: str, comment: str | None
) -> None:
    await conn.execute(
        """
        INSERT INTO feedback (message_id, chatbot_id, rating, comment) VALUES ($1, $2, $3, $4)
        ON CONFLICT (message_id) DO UPDATE SET rating = EXCLUDED.rating, comment = EXCLUDED.comment,
            created_at = now()
        """,
        message_id,
        chatbot_id,
        rating,
        comment,
    )
