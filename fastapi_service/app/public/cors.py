"""Per-chatbot CORS for `/v1/*`, as ASGI middleware.

Preflights are answered only for Origins some active chatbot allows (403 without CORS headers
otherwise). On real requests the key's dependency records whether the Origin is allowed for the
key's chatbot (`scope["state"]["cors"]`); CORS headers are added only when it is. The exact
Origin is echoed, never `*`, and no credentials are involved (keys travel in headers).
`Vary: Origin` is always set.
"""

from __future__ import annotations

import json
import logging

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.public.origins import OriginRegistry
from app.state import Engine

logger = logging.getLogger(__name__)

ALLOW_METHODS = "GET, POST, OPTIONS"
ALLOW_HEADERS = "Authorization, X-API-Key, Content-Type, Accept"
EXPOSE_HEADERS = "Retry-After, X-Request-Id"
CORS_STATE = "cors"  # scope["state"][CORS_STATE]: "allowed" | "rejected"


def _cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
    ]


class PublicCorsMiddleware:
    def __init__(self, app: ASGIApp, prefix: str = "/v1/") -> None:
        self.app = app
        self.prefix = prefix

    def _registry(self, scope: Scope) -> OriginRegistry | None:
        """The registry in the lifespan state (see app/state.py), once the engine has built it."""
        engine = scope.get("state", {}).get("engine")
        if isinstance(engine, Engine) and engine.services is not None:
            return engine.services.origins
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        registry = self._registry(scope)
        if scope["method"] == "OPTIONS" and origin is not None and "access-control-request-method" in headers:
            await self._preflight(origin, registry, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = [h for h in message.get("headers", []) if h[0].lower() != b"vary"]
                out.append((b"vary", b"Origin"))
                verdict = state.get(CORS_STATE)
                if origin is not None and verdict != "rejected":
                    allowed = verdict == "allowed"
                    if verdict is None and registry is not None:
                        # No chatbot known (e.g. a 401): readable by Origins some chatbot allows.
                        try:
                            allowed = await registry.allows(origin)
                        except Exception:
                            logger.warning("origin registry unavailable", exc_info=True)
                    if allowed:
                        out.extend(_cors_headers(origin))
                message["headers"] = out
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, origin: str, registry: OriginRegistry | None, send: Send) -> None:
        allowed = False
        if registry is not None:
            try:
                allowed = await registry.allows(origin)
            except Exception:
                logger.warning("origin registry unavailable", exc_info=True)
        if allowed:
            headers = [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                (b"access-control-max-age", b"600"),
                (b"vary", b"Origin"),
                (b"content-length", b"0"),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body = json.dumps({"error": "forbidden", "detail": "this Origin is not allowed"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"vary", b"Origin"),
        ]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})
