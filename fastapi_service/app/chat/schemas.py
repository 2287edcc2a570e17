"""Wire shapes of /v1/chat, /v1/sessions, /v1/feedback."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from app.wire import Text


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
    session_id: UUID
    messages: list[MessageOut]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: UUID
    rating: Literal["up", "down"]
    comment: Text | None = Field(None, max_length=2000)


class FeedbackResponse(BaseModel):
    message_id: UUID
    rating: Literal["up", "down"]
