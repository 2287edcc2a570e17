"""POST /v1/chat/completions and GET /v1/models, OpenAI-compatible. Thin.

Same key dependency as /v1/chat (secret keys; publishable keys only from an allowed Origin), so the
same rate limits, caps and isolation apply. Errors use OpenAI's `{"error": {message, type, code}}`
shape so OpenAI SDKs read them; `code` is the engine's error kind. One exception: a body over
PUBLIC_MAX_BODY_BYTES is refused by the body-limit middleware before routing, in the engine's
`{error, detail}` shape (still a 413 to every client).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.deps import ChatServiceDep
from app.errors import AppError, http_kind, validation_detail
from app.openai_compat.schemas import ChatCompletion, ChatCompletionRequest, ModelList, ModelOut, OpenAIError
from app.openai_compat.service import OpenAICompatService, chatbot_model, model_entry
from app.public.deps import PublicKeyDep

ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


class OpenAIErrorRoute(APIRoute):
    """Renders this router's errors (its dependencies' included) in OpenAI's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except AppError as exc:
                return openai_error(exc.status_code, exc.error, exc.detail, exc.headers)
            except RequestValidationError as exc:
                return openai_error(422, "invalid_request", validation_detail(exc))
            except StarletteHTTPException as exc:
                detail = exc.detail if isinstance(exc.detail, str) else "request failed"
                headers = dict(exc.headers) if exc.headers else None
                return openai_error(exc.status_code, http_kind(exc.status_code), detail, headers)

        return route


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIError, "description": description}
    for status, description in {
        401: "missing, invalid, revoked or expired key",
        403: "publishable key without an allowed Origin, or a system message with a publishable key",
        404: '`model` is neither "default" nor this key\'s chatbot id',
        413: "a message longer than MAX_MESSAGE_CHARS (or a body over PUBLIC_MAX_BODY_BYTES)",
        422: "invalid request: no final user message, more than 100 messages, n > 1, tools...",
        429: "rate limit of the key or client IP (Retry-After says when to retry)",
        503: "the engine is starting or all answer slots are busy (Retry-After)",
    }.items()
}

router = APIRouter(prefix="/v1", tags=["openai-compatible"], route_class=OpenAIErrorRoute, responses=ERRORS)


async def compat_service(chat: ChatServiceDep) -> OpenAICompatService:  # async: no thread hop
    return OpenAICompatService(chat)


CompatServiceDep = Annotated[OpenAICompatService, Depends(compat_service)]


def sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {payload}\n\n".encode()


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    summary="Chat completion (OpenAI-compatible)",
    responses={
        200: {
            "content": {
                "text/event-stream": {"example": 'data: {"object": "chat.completion.chunk", ...}\n\ndata: [DONE]\n\n'}
            }
        }
    },
)
async def chat_completions(body: ChatCompletionRequest, key: PublicKeyDep, service: CompatServiceDep) -> Any:
    """One answer from the chatbot, as OpenAI's Chat Completions API returns it. `stream: true`
    sends `chat.completion.chunk` events as the model writes, then `data: [DONE]`."""
    model, turn = await service.prepare(key, body)
    if not body.stream:
        return await service.completion(model, turn)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    async def stream() -> AsyncIterator[bytes]:
        async for chunk in service.chunks(model, turn, include_usage):
            yield sse(chunk)
            if "error" in chunk:
                return
        yield sse("[DONE]")

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


@router.get("/models", response_model=ModelList, summary="The chatbot this key answers with (OpenAI-compatible)")
async def models(key: PublicKeyDep) -> Any:
    return {"object": "list", "data": [model_entry(key)]}


@router.get("/models/{model}", response_model=ModelOut, summary='One model: "default" or the key\'s chatbot id')
async def model(model: str, key: PublicKeyDep) -> Any:
    chatbot_model(key, model)  # 404 for anything else
    return model_entry(key)
