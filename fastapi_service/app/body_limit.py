"""Request body caps, per route, applied before any parsing or key check (413 `{error, detail}`).

An ASGI middleware: a declared `Content-Length` over the cap is answered at once, without reading
the body; a chunked body is counted as it arrives and cut at the cap (an HTTPException raised from
`receive`, which FastAPI lets through to the one error handler). Internal routes get
`WEBHOOK_MAX_BODY_BYTES`, every other route `PUBLIC_MAX_BODY_BYTES`. Starlette's own
`RequestBodyLimitMiddleware` answers in plain text, hence this small adapter.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_response

INTERNAL_PREFIX = "/internal/"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, public_max: int, internal_max: int) -> None:
        self.app = app
        self.public_max = public_max
        self.internal_max = internal_max

    def cap_for(self, path: str) -> int:
        return self.internal_max if path.startswith(INTERNAL_PREFIX) else self.public_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap_for(scope["path"])
        detail = f"request body exceeds the {cap} byte limit"
        declared = _content_length(scope)
        if declared is not None and declared > cap:
            response = error_response(413, "payload_too_large", detail, {"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0

        async def receive_capped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise HTTPException(413, detail, headers={"Connection": "close"})
            return message

        await self.app(scope, receive_capped, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
