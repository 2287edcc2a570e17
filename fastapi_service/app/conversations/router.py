"""Internal (signed, Odoo-only) operations reports of one chatbot, read on demand. Thin.

GET  /internal/v1/chatbots/{id}/sessions                 paged, filtered list of conversations
GET  /internal/v1/chatbots/{id}/sessions/{session_id}    one transcript with sources and feedback
GET  /internal/v1/chatbots/{id}/unanswered               unanswered questions grouped by meaning
POST /internal/v1/chatbots/{id}/unanswered/handled       hide questions until they are asked again
GET  /internal/v1/chatbots/{id}/daily                    usage per UTC day
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from app.chatbots.router import parse
from app.conversations.repository import Rating
from app.conversations.schemas import MarkHandled, MarkHandledResult
from app.conversations.service import Window
from app.deps import ConversationsServiceDep
from app.internal.auth import InternalAuthDep
from app.wire import INT64_MAX

router = APIRouter(prefix="/internal/v1/chatbots/{chatbot_id}", tags=["internal"])

DEFAULT_DAYS = 30


def window(
    since: date | None = Query(None, description="YYYY-MM-DD, inclusive; default: 30 days ago"),
    until: date | None = Query(None, description="YYYY-MM-DD, exclusive; default: tomorrow"),
) -> Window:
    today = datetime.now(UTC).date()
    return Window(since or today - timedelta(days=DEFAULT_DAYS), until or today + timedelta(days=1))


WindowDep = Annotated[Window, Depends(window)]


@router.get("/sessions")
async def sessions(
    chatbot_id: UUID,
    _: InternalAuthDep,
    service: ConversationsServiceDep,
    span: WindowDep,
    rating: Rating | None = Query(None, description="up / down: has such feedback; none: no feedback"),
    unanswered: bool | None = Query(None, description="true: at least one unanswered turn; false: none"),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=INT64_MAX),
) -> dict[str, Any]:
    return await service.sessions(chatbot_id, span, rating=rating, unanswered=unanswered, limit=limit, offset=offset)


@router.get("/sessions/{session_id}")
async def transcript(
    chatbot_id: UUID, session_id: UUID, _: InternalAuthDep, service: ConversationsServiceDep
) -> dict[str, Any]:
    return await service.transcript(chatbot_id, session_id)


@router.get("/unanswered")
async def unanswered(
    chatbot_id: UUID,
    _: InternalAuthDep,
    service: ConversationsServiceDep,
    span: WindowDep,
    limit: int = Query(200, ge=1, le=500, description="distinct questions grouped, most asked first"),
) -> dict[str, Any]:
    return await service.unanswered(chatbot_id, span.since, limit)


@router.post("/unanswered/handled", response_model=MarkHandledResult)
async def mark_handled(
    chatbot_id: UUID, delivery: InternalAuthDep, service: ConversationsServiceDep
) -> MarkHandledResult:
    body = parse(MarkHandled, delivery.payload)
    return MarkHandledResult(handled=await service.mark_handled(chatbot_id, body.questions))


@router.get("/daily")
async def daily(
    chatbot_id: UUID, _: InternalAuthDep, service: ConversationsServiceDep, span: WindowDep
) -> dict[str, Any]:
    return await service.daily(chatbot_id, span)
