"""OpenAI Chat Completions on top of the chat service: one request is one chat turn.

The answering (retrieval, prompt, model or extractive fallback, storage, analytics, feedback ids)
is the chat service's; this module only translates. `messages` become the turn: the last one is
the question, the user/assistant messages before it the history (the caller's transcript, cut to
the chatbot's HISTORY_TURNS window like stored sessions).

System and developer messages from the caller: appended for secret keys, refused for publishable
keys. A secret key is the tenant's own backend, so its instructions are added after the chatbot's
system prompt (and before the grounding instructions, which always come last and keep answers
cited and inside the documents). A publishable key is readable by anyone on the tenant's pages:
accepting its system messages would let any visitor re-program the tenant's bot, so they are a 403.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from app.chat.service import ChatService, PreparedTurn
from app.errors import Forbidden, NotFound, PayloadTooLarge, Unprocessable
from app.generation.prompt import Turn
from app.keys.service import ApiKey
from app.openai_compat.schemas import ChatCompletionRequest

DEFAULT_MODEL = "default"
SYSTEM_ROLES = ("system", "developer")


def chatbot_model(key: ApiKey, model: str) -> str:
    """The model id answering for `model` ("default" or the key's chatbot id); 404 otherwise,
    the same for another chatbot's id as for nonsense."""
    if model == DEFAULT_MODEL:
        return str(key.chatbot.id)
    try:
        wanted = UUID(model)
    except ValueError:
        wanted = None
    if wanted != key.chatbot.id:
        raise NotFound(f'the model {model!r} does not exist or this key cannot use it; use "default"')
    return str(key.chatbot.id)


def model_entry(key: ApiKey) -> dict[str, Any]:
    chatbot = key.chatbot
    return {
        "id": str(chatbot.id),
        "object": "model",
        "created": int(chatbot.created_at.timestamp()) if chatbot.created_at else 0,
        "owned_by": "chatbot-platform",
        "name": chatbot.name,
    }


class OpenAICompatService:
    def __init__(self, chat: ChatService) -> None:
        self.chat = chat

    async def prepare(self, key: ApiKey, request: ChatCompletionRequest) -> tuple[str, PreparedTurn]:
        model = chatbot_model(key, request.model)
        max_chars = self.chat.settings.max_message_chars
        *earlier, last = request.messages
        if last.role != "user":
            raise Unprocessable("messages: the last message must be the user's question")
        system: list[str] = []
        history: list[Turn] = []
        for n, message in enumerate(request.messages):
            text = message.text()
            if len(text) > max_chars:
                raise PayloadTooLarge(f"messages[{n}]: content is longer than {max_chars} characters")
            if message.role in SYSTEM_ROLES:
                if not key.is_secret:
                    raise Forbidden(
                        f"messages[{n}]: {message.role} messages need a secret key; "
                        "the chatbot's own system prompt is set in Odoo"
                    )
                system.append(text)
            elif text.strip() and n < len(earlier):
                history.append(Turn(message.role, text))
        turn = await self.chat.prepare(
            key, last.text(), request.session_id, history=history, extra_system="\n\n".join(system)
        )
        return model, turn

    async def completion(self, model: str, turn: PreparedTurn) -> dict[str, Any]:
        async for _event in self.chat.events(turn):
            pass  # collected into turn.result; a model failing midway keeps the partial answer
        result = turn.result
        return {
            "id": completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": result["answer"], "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": usage(result),
            "x_chatbot_platform": extension(result),
        }

    async def chunks(self, model: str, turn: PreparedTurn, include_usage: bool) -> AsyncIterator[dict[str, Any]]:
        """OpenAI's `chat.completion.chunk` objects: role first (with the sources in the extension),
        one per model token, then finish_reason (with the stored ids), then usage if asked for.
        A model failing midway ends with an `{"error": ...}` event, which OpenAI SDKs raise."""
        base = {"id": completion_id(), "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
            return {
                **base,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                **extra,
            }

        async for event, data in self.chat.events(turn):
            if event == "sources":
                yield chunk({"role": "assistant", "content": ""}, x_chatbot_platform={"sources": data["sources"]})
            elif event == "token":
                yield chunk({"content": data["text"]})
            elif event == "error":
                yield {
                    "error": {"message": data["detail"], "type": "server_error", "param": None, "code": data["error"]}
                }
                return
            elif event == "done":
                yield chunk({}, "stop", x_chatbot_platform=extension(turn.result))
                if include_usage:
                    yield {**base, "choices": [], "usage": usage(turn.result)}


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage(result: dict[str, Any]) -> dict[str, int]:
    """The model's own token counts; 0 and 0 for extractive answers (no model ran)."""
    prompt, completion = result["usage"]["prompt_tokens"], result["usage"]["completion_tokens"]
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def extension(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "session_id": result["session_id"],
        "message_id": result["message_id"],
        "generator": result["generator"],
        "sources": result["sources"],
        "retrieval_ms": result["usage"]["retrieval_ms"],
    }
