"""Rules of the Odoo operations reports: paging and filters, the transcript, unanswered clusters, daily usage.

Unanswered questions are grouped by meaning with the engine's own embedding model: distinct
questions, most asked first, each joins the first group whose leading question is at least
CLUSTER_SIMILARITY similar (cosine of the L2-normalised vectors), else starts a group. Greedy and
order-stable: the same report gives the same groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg
import numpy as np

from app.conversations import repository
from app.conversations.repository import Rating
from app.embedding.service import EmbeddingService
from app.errors import NotFound, Unprocessable

CLUSTER_SIMILARITY = 0.7
# The report's questions take the model's query path (micro-batched): faster here than the
# ingestion batch path (bench/unanswered_clusters.py, docs/benchmarks.md).
EMBED_PURPOSE = "query"
MAX_REPORT_DAYS = 366  # longest [since, until) window of one request
MAX_HANDLED_PER_REQUEST = 200


@dataclass(frozen=True)
class Window:
    since: date
    until: date

    def __post_init__(self) -> None:
        if self.until <= self.since:
            raise Unprocessable("until: must be after since")
        if (self.until - self.since).days > MAX_REPORT_DAYS:
            raise Unprocessable(f"the window is longer than {MAX_REPORT_DAYS} days")


def cluster(questions: list[dict[str, Any]], vectors: np.ndarray, threshold: float) -> list[dict[str, Any]]:
    """Group `questions` (ordered most asked first) whose vectors are alike; see the module doc."""
    groups: list[dict[str, Any]] = []
    leaders: list[np.ndarray] = []
    for question, vector in zip(questions, vectors, strict=True):
        best = -1
        if leaders:
            similarities = np.stack(leaders) @ vector
            candidate = int(np.argmax(similarities))
            if similarities[candidate] >= threshold:
                best = candidate
        if best < 0:
            leaders.append(vector)
            groups.append({"question": question["question"], "count": 0, "last_asked": None, "questions": []})
            best = len(groups) - 1
        group = groups[best]
        group["count"] += question["count"]
        group["questions"].append(question)
        if group["last_asked"] is None or question["last_asked"] > group["last_asked"]:
            group["last_asked"] = question["last_asked"]
    groups.sort(key=lambda g: (-g["count"], -g["last_asked"].timestamp()))
    return groups


class ConversationsService:
    def __init__(self, pool: asyncpg.Pool, embedder: EmbeddingService) -> None:
        self.pool = pool
        self.embedder = embedder

    async def sessions(
        self,
        chatbot_id: UUID,
        window: Window,
        *,
        rating: Rating | None,
        unanswered: bool | None,
        limit: int,
        offset: int,
    ) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            rows, total = await repository.list_sessions(
                conn,
                chatbot_id,
                since=window.since,
                until=window.until,
                rating=rating,
                unanswered=unanswered,
                limit=limit,
                offset=offset,
            )
        return {
            "total": total,
            "limit": limit,
            "offset": offset,
            "sessions": [
                {
                    "session_id": r["id"],
                    "created_at": r["created_at"],
                    "last_active_at": r["last_active_at"],
                    "turns": r["turns"],
                    "first_question": r["first_question"],
                    "thumbs_up": r["thumbs_up"],
                    "thumbs_down": r["thumbs_down"],
                    "generators": sorted(r["generators"]),
                    "unanswered": r["unanswered"],
                    "handoff_at": r["handoff_at"],
                }
                for r in rows
            ],
        }

    async def transcript(self, chatbot_id: UUID, session_id: UUID) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            session = await repository.find_session(conn, chatbot_id, session_id)
            if session is None:
                raise NotFound("no such session")
            rows = await repository.transcript(conn, chatbot_id, session_id)
        return {
            "session_id": session_id,
            "created_at": session["created_at"],
            "last_active_at": session["last_active_at"],
            "handoff_at": session["handoff_at"],
            "handoff_reason": session["handoff_reason"],
            "messages": [
                {
                    "id": r["id"],
                    "role": r["role"],
                    "content": r["content"],
                    "created_at": r["created_at"],
                    **(
                        {
                            "sources": r["sources"],
                            "generator": r["generator"],
                            "answered": bool(r["answered"]),
                            "latency_ms": r["latency_ms"],
                            "feedback": {"rating": r["rating"], "comment": r["comment"]} if r["rating"] else None,
                        }
                        if r["role"] == "assistant"
                        else {}
                    ),
                }
                for r in rows
            ],
        }

    async def unanswered(self, chatbot_id: UUID, since: date, limit: int) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            rows = await repository.unanswered_questions(conn, chatbot_id, since, limit)
        questions = [{"question": r["question"], "count": r["count"], "last_asked": r["last_asked"]} for r in rows]
        vectors = await self.embedder.embed([q["question"] for q in questions], purpose=EMBED_PURPOSE)
        return {"since": since, "groups": cluster(questions, vectors, CLUSTER_SIMILARITY)}

    async def mark_handled(self, chatbot_id: UUID, questions: list[str]) -> int:
        if not questions:
            raise Unprocessable("questions: must not be empty")
        if len(questions) > MAX_HANDLED_PER_REQUEST:
            raise Unprocessable(f"questions: at most {MAX_HANDLED_PER_REQUEST} per request")
        async with self.pool.acquire() as conn:
            return await repository.mark_handled(conn, chatbot_id, questions)

    async def daily(self, chatbot_id: UUID, window: Window) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            rows = await repository.daily_usage(conn, chatbot_id, window.since, window.until)
        return {
            "since": window.since,
            "until": window.until,
            "days": [
                {
                    "day": r["day"],
                    "questions": r["questions"],
                    "sessions": r["sessions"],
                    "unanswered": r["unanswered"],
                    "thumbs_up": r["thumbs_up"],
                    "thumbs_down": r["thumbs_down"],
                    "p50_latency_ms": r["p50_latency_ms"],
                    "generators": r["generators"] or {},
                }
                for r in rows
            ],
        }
