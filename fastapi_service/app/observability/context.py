"""Per-request logging context: request id and chatbot id, added to every log record."""

from __future__ import annotations

import logging
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
chatbot_id_var: ContextVar[str | None] = ContextVar("chatbot_id", default=None)


def bind_chatbot(chatbot_id: object) -> None:
    """Called once a request is resolved to a chatbot (API key, internal route)."""
    chatbot_id_var.set(str(chatbot_id))


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.chatbot_id = chatbot_id_var.get()
        return True
