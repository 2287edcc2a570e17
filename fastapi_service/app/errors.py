"""One error base class and one handler: every error renders as `{"error", "detail"}`."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class AppError(Exception):
    """Base of every error the engine reports to a client."""

    status_code = 400
    error = "bad_request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class NotFound(AppError):
    status_code = 404
    error = "not_found"


class Unauthorized(AppError):
    status_code = 401
    error = "unauthorized"


class Forbidden(AppError):
    status_code = 403
    error = "forbidden"


class Conflict(AppError):
    status_code = 409
    error = "conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    error = "payload_too_large"


class Unprocessable(AppError):
    status_code = 422
    error = "invalid_request"


class RateLimited(AppError):
    status_code = 429
    error = "rate_limited"


class ServiceUnavailable(AppError):
    status_code = 503
    error = "unavailable"


class ErrorBody(BaseModel):
    """The body of every engine error (the OpenAI-compatible routes use OpenAI's shape instead)."""

    error: str = Field(description="a stable machine-readable kind", examples=["unauthorized"])
    detail: str = Field(
        description="a sentence for the developer", examples=["missing, invalid, revoked or expired API key"]
    )


ERROR_DESCRIPTIONS = {
    401: "missing, invalid, revoked or expired key (`WWW-Authenticate: Bearer`)",
    403: "a publishable key without an allowed Origin, or a secret-key route with a publishable key",
    404: "no such session or message for this key's chatbot (another chatbot's ids included)",
    413: "a message over MAX_MESSAGE_CHARS, or a body over PUBLIC_MAX_BODY_BYTES",
    422: "invalid request body or parameters; `detail` names the fields",
    429: "the key's or client IP's rate limit is spent; `Retry-After` says when to retry",
    503: "the engine is starting or every answer slot is busy; `Retry-After` says when to retry",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` documenting these statuses with the one error body."""
    return {status: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[status]} for status in statuses}


def error_response(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def validation_detail(exc: RequestValidationError) -> str:
    """The first few validation errors as one sentence: `field: message; ...`."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def http_kind(status: int) -> str:
    return _HTTP_KINDS.get(status, "error")


_HTTP_KINDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return error_response(exc.status_code, exc.error, exc.detail, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        return error_response(exc.status_code, http_kind(exc.status_code), detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", validation_detail(exc))

    @app.exception_handler(asyncpg.DataError)
    async def _data_error(_: Request, exc: asyncpg.DataError) -> JSONResponse:
        # Backstop behind the schemas' bounds (app/wire.py): a value PostgreSQL cannot store is the
        # client's error, and the database's own message is never shown.
        logger.warning("value refused by the database", extra={"error": type(exc).__name__})
        return error_response(
            422, "invalid_request", "a value is out of range or contains characters that cannot be stored"
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "the engine hit an unexpected error")
