"""Wire shapes of /v1/chat/completions and /v1/models: the subset of OpenAI's Chat Completions API
the engine serves, plus one documented extension field, `x_chatbot_platform`.

Requests ignore the sampling parameters OpenAI clients send by habit (temperature, top_p,
max_tokens, stop, seed, penalties, user, metadata...): sampling is the chatbot's setting in Odoo.
What the engine cannot honour is refused (n > 1, tools, non-text content parts), never ignored.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from app.chat.schemas import MESSAGE_EXAMPLE, SESSION_EXAMPLE, SOURCE_EXAMPLE, SourceOut
from app.wire import Text

MAX_MESSAGES = 100  # per request; the chatbot's HISTORY_TURNS window is then taken from the end


class TextPart(BaseModel):
    type: Literal["text"]
    text: Text


class ChatMessageIn(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: Text | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "model": "default",
                    "messages": [
                        {"role": "user", "content": "How long is the warranty?"},
                    ],
                    "stream": False,
                }
            ]
        },
    )

    model: str = Field(
        min_length=1, max_length=64, description='the chatbot: its id, or "default" for the key\'s own chatbot'
    )
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="only one choice is generated")
    tools: list[Any] | None = Field(None, max_length=0, description="not supported: must be absent or empty")
    session_id: UUID | None = Field(
        None,
        description="extension: store this turn in an existing session of the chatbot (the history still comes "
        "from `messages`); omitted, each call starts a new session",
    )


class Extension(BaseModel):
    """`x_chatbot_platform`: what /v1/chat returns beside the answer. Strict OpenAI clients keep
    unknown fields (the official SDKs expose them as extra attributes) and ignore them otherwise."""

    session_id: UUID
    message_id: UUID = Field(description="the id to send to POST /v1/feedback")
    generator: Literal["ollama", "openai", "extractive"]
    sources: list[SourceOut]
    retrieval_ms: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] = "stop"
    logprobs: None = None


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "chatcmpl-5f0c2d9e8b1a4c1e9d3b2a1f0e9d8c7b",
                    "object": "chat.completion",
                    "created": 1767225600,
                    "model": "3f6b7c1e-2a4d-4e8f-9b0a-1c2d3e4f5a6b",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "Two years [1].", "refusal": None},
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": {"prompt_tokens": 321, "completion_tokens": 6, "total_tokens": 327},
                    "x_chatbot_platform": {
                        "session_id": SESSION_EXAMPLE,
                        "message_id": MESSAGE_EXAMPLE,
                        "generator": "ollama",
                        "sources": [SOURCE_EXAMPLE],
                        "retrieval_ms": 41,
                    },
                }
            ]
        }
    )

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
    x_chatbot_platform: Extension


class ModelOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f6b7c1e-2a4d-4e8f-9b0a-1c2d3e4f5a6b",
                    "object": "model",
                    "created": 1767225600,
                    "owned_by": "chatbot-platform",
                    "name": "Support bot",
                }
            ]
        }
    )

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "chatbot-platform"
    name: str = Field(description="extension: the chatbot's display name")


class ModelList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "object": "list",
                    "data": [
                        {
                            "id": "3f6b7c1e-2a4d-4e8f-9b0a-1c2d3e4f5a6b",
                            "object": "model",
                            "created": 1767225600,
                            "owned_by": "chatbot-platform",
                            "name": "Support bot",
                        }
                    ],
                }
            ]
        }
    )

    object: Literal["list"] = "list"
    data: list[ModelOut]


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str = Field(examples=["invalid_request_error"])
    param: str | None = None
    code: str | None = Field(None, examples=["payload_too_large"])


class OpenAIError(BaseModel):
    """Errors of the OpenAI-compatible routes, in OpenAI's shape so its SDKs read them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "message": "missing, invalid, revoked or expired API key",
                        "type": "authentication_error",
                        "param": None,
                        "code": "unauthorized",
                    }
                }
            ]
        }
    )

    error: OpenAIErrorDetail
