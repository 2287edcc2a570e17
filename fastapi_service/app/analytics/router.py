"""Internal (signed) reports for Odoo: analytics and conversations of one chatbot. Thin."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query

from app.analytics import repository
from app.deps import DbDep
from app.internal.auth import InternalAuthDep
from app.wire import INT64_MAX

router = APIRouter(prefix="/internal/v1", tags=["internal"])


def default_since() -> date:
    return (datetime.now(UTC) - timedelta(days=30)).date()


@router.get("/chatbots/{chatbot_id}/analytics")
async def analytics(
    chatbot_id: UUID,
    _: InternalAuthDep,
    db: DbDep,
    since: date | None = Query(None, description="YYYY-MM-DD; default: 30 days ago"),
    limit: int = Query(20, ge=1, le=200),
) -> dict[str, Any]:
    since = since or default_since()
    return {
        "chatbot": chatbot_id,
        "since": since,
        "per_day": [dict(r) for r in await repository.per_day(db, chatbot_id, since)],
        "feedback": await repository.feedback_counts(db, chatbot_id, since),
        "top_questions": [dict(r) for r in await repository.top_questions(db, chatbot_id, since, limit)],
        "unanswered": [dict(r) for r in await repository.unanswered(db, chatbot_id, since, limit)],
        "keys": [dict(r) for r in await repository.key_usage(db, chatbot_id)],
    }


@router.get("/chatbots/{chatbot_id}/conversations")
async def conversations(
    chatbot_id: UUID,
    _: InternalAuthDep,
    db: DbDep,
    since: date | None = Query(None, description="YYYY-MM-DD; default: 30 days ago"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=INT64_MAX),
) -> dict[str, Any]:
    since = since or default_since()
    rows = await repository.conversations(db, chatbot_id, since, limit, offset)
    return {
        "chatbot": chatbot_id,
        "sessions": [
            {
                "session_id": r["id"],
                "created_at": r["created_at"],
                "last_active_at": r["last_active_at"],
                "messages": r["messages"],
            }
            for r in rows
        ],
    }
