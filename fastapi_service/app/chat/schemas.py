"""Wire shapes of /v1/chat, /v1/sessions, /v1/feedback."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.wire import Text

SOURCE_EXAMPLE: dict[str, JsonValue] = {
    "source": "7c6b5a49-3827-4165-8f4e-3d2c1b0a9f8e",
    "name": "Handbook.pdf",
    "url": None,
    "page": 3,
    "heading": "Warranty",
    "snippet": "Warranty: every Acme gadget carries a two-year warranty...",
    "score": 0.82,
}
SESSION_EXAMPLE = "9b2e4f6a-1c3d-4e5f-8a7b-6c5d4e3f2a1b"
MESSAGE_EXAMPLE = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


class ChatRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"message": "How long is the warranty?"},
                {"message": "And for batteries?", "session_id": SESSION_EXAMPLE, "stream": True},
            ]
        },
    )

    message: Text = Field(min_length=1)
    session_id: UUID | None = None
    stream: bool = False


class SourceOut(BaseModel):
    source: UUID
    name: str
    url: str | None
    page: int | None = None  # PDF page of the passage
    heading: str | None = None  # section heading of the passage
    snippet: str
    score: float


class UsageOut(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int = 0
    retrieval_ms: int = 0


class HandoffOut(BaseModel):
    message: str  # the question asked for a human (a handoff phrase): what happens next


class ChatResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "answer": "Every Acme gadget has a two-year warranty [1].",
                    "session_id": SESSION_EXAMPLE,
                    "message_id": MESSAGE_EXAMPLE,
                    "sources": [SOURCE_EXAMPLE],
                    "generator": "ollama",
                    "usage": {"prompt_tokens": 321, "completion_tokens": 12, "latency_ms": 840, "retrieval_ms": 41},
                }
            ]
        }
    )

    answer: str
    session_id: UUID
    message_id: UUID
    sources: list[SourceOut]
    generator: Literal["ollama", "openai", "extractive"]
    usage: UsageOut
    handoff: HandoffOut | None = None


class MessageOut(BaseModel):
    id: UUID
    role: Literal["user", "assistant"]
    content: str
    sources: list[SourceOut] = Field(default_factory=list)
    generator: str | None = None
    created_at: datetime


class SessionMessages(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "session_id": SESSION_EXAMPLE,
                    "messages": [
                        {
                            "id": "5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716",
                            "role": "user",
                            "content": "How long is the warranty?",
                            "sources": [],
                            "generator": None,
                            "created_at": "2026-01-05T10:00:00Z",
                        },
                        {
                            "id": MESSAGE_EXAMPLE,
                            "role": "assistant",
                            "content": "Every Acme gadget has a two-year warranty [1].",
                            "sources": [SOURCE_EXAMPLE],
                            "generator": "ollama",
                            "created_at": "2026-01-05T10:00:01Z",
                        },
                    ],
                }
            ]
        }
    )

    session_id: UUID
    messages: list[MessageOut]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"message_id": MESSAGE_EXAMPLE, "rating": "down", "comment": "Outdated"}]},
    )

    message_id: UUID
    rating: Literal["up", "down"]
    comment: Text | None = Field(None, max_length=2000)


class FeedbackResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"message_id": MESSAGE_EXAMPLE, "rating": "down"}]})

    message_id: UUID
    rating: Literal["up", "down"]
