"""Public chat API: POST /v1/chat (JSON or SSE), session history, feedback. Thin."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.chat.schemas import ChatRequest, ChatResponse, FeedbackRequest, FeedbackResponse, SessionMessages
from app.deps import ChatServiceDep, HandoffServiceDep, SettingsDep
from app.errors import PayloadTooLarge, error_responses
from app.handoff.service import asks_for_human
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
    request: Request,
    body: ChatRequest,
    key: PublicKeyDep,
    service: ChatServiceDep,
    settings: SettingsDep,
    handoff: HandoffServiceDep,
) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_message_chars * 8 + 1024:
        raise PayloadTooLarge("request body is too large")
    turn = await service.prepare(key, body.message, body.session_id)

    async def handoff_notice() -> dict[str, str]:
        told = await handoff.request(key, turn.session_id, "phrase")
        return {"message": told["message"]}

    wants_stream = body.stream or "text/event-stream" in request.headers.get("accept", "")
    # A question with one of the chatbot's handoff phrases is answered as usual and also hands
    # the session to a human once the turn is stored (the transcript then includes it).
    wants_human = asks_for_human(key.chatbot.widget, turn.question)
    if wants_stream:

        async def stream() -> AsyncIterator[bytes]:
            async for event, data in service.events(turn):
                if event == "done" and wants_human:
                    data = {**data, "handoff": await handoff_notice()}
                yield sse(event, data)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    async for _event in service.events(turn):
        pass  # collected into turn.result; a failure mid-answer keeps the partial answer
    if wants_human and turn.result:
        turn.result["handoff"] = await handoff_notice()
    return turn.result


@router.get("/sessions/{session_id}/messages", response_model=SessionMessages)
async def session_messages(session_id: UUID, key: PublicKeyDep, service: ChatServiceDep) -> Any:
    messages = await service.messages(key, session_id)
    return {"session_id": session_id, "messages": messages}


@router.post("/feedback", response_model=FeedbackResponse)
async def feedback(body: FeedbackRequest, key: PublicKeyDep, service: ChatServiceDep) -> Any:
    await service.feedback(key, body.message_id, body.rating, body.comment)
    return {"message_id": body.message_id, "rating": body.rating}
