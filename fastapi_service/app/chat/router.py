"""Public chat API: POST /v1/chat (JSON or SSE), session history, feedback. Thin."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.chat.schemas import ChatRequest, ChatResponse, FeedbackRequest, FeedbackResponse, SessionMessages
from app.deps import ChatServiceDep, SettingsDep
from app.errors import PayloadTooLarge, error_responses
from app.public.deps import PublicKeyDep

router = APIRouter(prefix="/v1", tags=["public"], responses=error_responses(401, 403, 404, 413, 422, 429, 503))
SSE_EXAMPLE = (
    'event: sources\ndata: {"sources": [{"source": "7c6b5a49-3827-4165-8f4e-3d2c1b0a9f8e", "name": "Handbook.pdf", ...}]}\n\n'
    'event: token\ndata: {"text": "Two years "}\n\n'
    'event: token\ndata: {"text": "[1]."}\n\n'
    'event: done\ndata: {"answer": "Two years [1].", "session_id": "...", "message_id": "...", ...}\n\n'
)


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@router.post(
    "/chat",
    response_model=ChatResponse,
    responses={200: {"content": {"text/event-stream": {"example": SSE_EXAMPLE}}}},
)
async def chat(
    request: Request, body: ChatRequest, key: PublicKeyDep, service: ChatServiceDep, settings: SettingsDep
) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_message_chars * 8 + 1024:
        raise PayloadTooLarge("request body is too large")
    turn = await service.prepare(key, body.message, body.session_id)
    wants_stream = body.stream or "text/event-stream" in request.headers.get("accept", "")
    if wants_stream:

        async def stream() -> AsyncIterator[bytes]:
            async for event, data in service.events(turn):
                yield sse(event, data)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    async for _event in service.events(turn):
        pass  # collected into turn.result; a failure mid-answer keeps the partial answer
    return turn.result


@router.get("/sessions/{session_id}/messages", response_model=SessionMessages)
async def session_messages(session_id: UUID, key: PublicKeyDep, service: ChatServiceDep) -> Any:
    messages = await service.messages(key, session_id)
    return {"session_id": session_id, "messages": messages}


@router.post("/feedback", response_model=FeedbackResponse)
async def feedback(body: FeedbackRequest, key: PublicKeyDep, service: ChatServiceDep) -> Any:
    await service.feedback(key, body.message_id, body.rating, body.comment)
    return {"message_id": body.message_id, "rating": body.rating}
