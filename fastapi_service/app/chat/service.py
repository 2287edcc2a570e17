"""One chat turn: session, retrieval, the answer (app/generation), storage of the turn.

`prepare` does everything that can fail with an HTTP status (unknown session, full session,
overload) before a response starts; `events` then yields the answer as events, used verbatim for
Server-Sent Events and collected for JSON responses, so both share one code path.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from app.chat import repository
from app.config import Settings
from app.errors import NotFound, PayloadTooLarge, Unprocessable
from app.generation.backends import Usage
from app.generation.prompt import Turn, with_caller_system
from app.generation.service import EXTRACTIVE, Answered, Answerer, Cited, Piece
from app.keys.service import ApiKey
from app.observability.metrics import CHAT_ANSWERS
from app.retrieval.service import Hit, Retriever, snippet

MAX_SESSION_MESSAGES = 400  # 200 turns; then the client must start a new session


@dataclass
class PreparedTurn:
    key: ApiKey
    question: str
    session_id: UUID
    history: list[Turn]
    hits: list[Hit]
    answered: bool
    started: float
    retrieval_ms: int
    extra_system: str = ""  # the caller's own instructions (OpenAI-compatible API, secret keys)
    holds_slot: bool = False
    result: dict[str, Any] = field(default_factory=dict)


def validate_message(message: str, settings: Settings) -> str:
    if len(message) > settings.max_message_chars:
        raise PayloadTooLarge(f"message is longer than {settings.max_message_chars} characters")
    text = message.strip()
    if not text:
        raise Unprocessable("message: must not be empty")
    return text


def source_dicts(hits: list[Hit]) -> list[dict[str, Any]]:
    return [
        {
            "source": str(h.source_id),
            "name": h.name,
            "url": h.url,
            "page": h.metadata.get("page"),
            "heading": h.metadata.get("heading"),
            "snippet": snippet(h.content),
            "score": h.score,
        }
        for h in hits
    ]


class ChatService:
    def __init__(self, pool: asyncpg.Pool, retriever: Retriever, answerer: Answerer, settings: Settings) -> None:
        self.pool = pool
        self.retriever = retriever
        self.answerer = answerer
        self.settings = settings

    async def prepare(
        self,
        key: ApiKey,
        message: str,
        session_id: UUID | None,
        *,
        history: list[Turn] | None = None,
        extra_system: str = "",
    ) -> PreparedTurn:
        """Check and set up one turn. `history` given: the caller's own transcript replaces the
        stored one (OpenAI-style clients resend it), cut to the same HISTORY_TURNS window."""
        started = time.perf_counter()
        question = validate_message(message, self.settings)
        chatbot = key.chatbot
        caller_history = history
        window = self.settings.history_turns * 2
        history = caller_history[-window:] if caller_history and window else []
        async with self.pool.acquire() as conn:
            if session_id is None:
                session_id = uuid.uuid4()
                await repository.create_session(conn, chatbot.id, session_id, key.kind)
            else:
                session = await repository.find_session(conn, chatbot.id, session_id)
                if session is None or (not key.is_secret and session["key_kind"] != "publishable"):
                    raise NotFound("no such session")
                if await repository.count_messages(conn, session_id) >= MAX_SESSION_MESSAGES:
                    raise Unprocessable("this session is full; start a new one (omit session_id)")
                if self.settings.history_turns and caller_history is None:
                    rows = await repository.recent_messages(conn, session_id, self.settings.history_turns * 2)
                    history = [Turn(r["role"], r["content"]) for r in rows]
        top_k = int(chatbot.generation.get("top_k") or 5)
        hits = await self.retriever.search(chatbot.id, question, top_k)
        retrieval_ms = int((time.perf_counter() - started) * 1000)
        answered = self.answerer.can_answer(hits)
        turn = PreparedTurn(
            key, question, session_id, history, hits if answered else [], answered, started, retrieval_ms, extra_system
        )
        if answered and self.answerer.uses_model:
            await self.answerer.acquire()  # 503 now, before any byte of the response
            turn.holds_slot = True
        return turn

    async def events(self, turn: PreparedTurn) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """("sources", …), ("token", …)*, then ("done", …) or ("error", …)."""
        try:
            async for event in self._events(turn):
                yield event
        finally:
            if turn.holds_slot:
                turn.holds_slot = False
                self.answerer.release()

    async def _events(self, turn: PreparedTurn) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        chatbot = turn.key.chatbot
        sources: list[dict[str, Any]] = []
        async for event in self.answerer.answer(
            turn.question,
            turn.hits,
            turn.history,
            with_caller_system(chatbot.prompts, turn.extra_system),
            chatbot.generation,
            chatbot.language,
        ):
            if isinstance(event, Cited):
                sources = source_dicts(event.hits)
                yield "sources", {"sources": sources}
            elif isinstance(event, Piece):
                yield "token", {"text": event.text}
            elif isinstance(event, Answered):
                turn.answered, turn.hits = event.answered, event.hits
                # A model's answer keeps the sources sent first; a fallback keeps those it cites.
                stored = sources if event.generator != EXTRACTIVE else source_dicts(event.hits)
                await self._finish(turn, event.text, stored, event.generator, event.usage)
                if event.cut_short:
                    yield "error", {"error": "generation_failed", "detail": "the model stopped answering"}
                    return
        yield "done", {k: v for k, v in turn.result.items() if k != "sources"}

    async def _finish(
        self, turn: PreparedTurn, answer: str, sources: list[dict[str, Any]], generator: str, usage: Usage
    ) -> None:
        message_id = await self._store(turn, answer, sources, generator, usage)
        CHAT_ANSWERS.labels(generator).inc()
        turn.result = {
            "answer": answer,
            "session_id": str(turn.session_id),
            "message_id": str(message_id),
            "sources": sources,
            "generator": generator,
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "latency_ms": int((time.perf_counter() - turn.started) * 1000),
                "retrieval_ms": turn.retrieval_ms,
            },
        }

    async def _store(
        self, turn: PreparedTurn, answer: str, sources: list[dict[str, Any]], generator: str, usage: Usage
    ) -> UUID:
        message_id = uuid.uuid4()
        async with self.pool.acquire() as conn:
            await repository.store_turn(
                conn,
                chatbot_id=turn.key.chatbot.id,
                session_id=turn.session_id,
                question_id=uuid.uuid4(),
                question=turn.question,
                answer_id=message_id,
                answer=answer,
                sources=sources,
                generator=generator,
                answered=turn.answered,
                latency_ms=int((time.perf_counter() - turn.started) * 1000),
                retrieval_ms=turn.retrieval_ms,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
            )
        return message_id

    async def messages(self, key: ApiKey, session_id: UUID) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            session = await repository.find_session(conn, key.chatbot.id, session_id)
            if session is None or (not key.is_secret and session["key_kind"] != "publishable"):
                raise NotFound("no such session")
            rows = await repository.session_messages(conn, key.chatbot.id, session_id)
        return [dict(r) for r in rows]

    async def feedback(self, key: ApiKey, message_id: UUID, rating: str, comment: str | None) -> None:
        async with self.pool.acquire() as conn:
            if not await repository.assistant_message_exists(conn, key.chatbot.id, message_id):
                raise NotFound("no such message")
            await repository.upsert_feedback(conn, key.chatbot.id, message_id, rating, comment)
