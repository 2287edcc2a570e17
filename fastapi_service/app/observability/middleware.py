"""ASGI middleware: request id, access log line, latency histogram by route template.

The latency and the log line are recorded when the response's last message is sent (the time a
client waits), so any request a client makes after it has a response sees that response counted.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.context import chatbot_id_var, request_id_var
from app.observability.metrics import HTTP_REQUEST_SECONDS

logger = logging.getLogger("app.access")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_QUIET = {"/healthz", "/readyz", "/metrics"}


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        rid_token = request_id_var.set(request_id)
        bot_token = chatbot_id_var.set(None)
        status = 500
        started = time.perf_counter()
        recorded = False

        def record() -> None:
            # Once per request. Called before the response's last message goes out, not after the app
            # returns: the app may still await after that (a yield dependency releasing its database
            # connection), and a client that has its response may already be reading /metrics.
            nonlocal recorded
            if recorded:
                return
            recorded = True
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            HTTP_REQUEST_SECONDS.labels(scope["method"], template, str(status)).observe(elapsed)
            if template not in _QUIET:
                # Never the query string, body or headers: they may carry keys or document text.
                logger.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            elif _is_last(message):
                record()
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            record()  # no complete response (an error before it, a client gone mid-stream): still counted
            request_id_var.reset(rid_token)
            chatbot_id_var.reset(bot_token)


def _is_last(message: Message) -> bool:
    if message["type"] == "http.response.body":
        return not bool(message.get("more_body", False))
    return bool(message["type"] == "http.response.pathsend")
