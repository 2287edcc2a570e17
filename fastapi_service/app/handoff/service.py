"""Handoff rules: when a question asks for a human, what is recorded and sent, and the delivery.

A handoff is asked for by the widget's button (POST /v1/handoff) or by a question containing one
of the chatbot's `handoff_phrases` (case- and space-insensitive). The session is marked once and,
in the same transaction, a notice with the transcript is queued for Odoo; `deliver_due` (run by
the ingestion workers next to the status callbacks) POSTs it signed and retries with backoff.
Nothing is queued when ODOO_URL is empty; the visitor is still told what happens next.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from app.config import Settings
from app.errors import NotFound
from app.handoff import repository
from app.keys.service import ApiKey
from app.webhooks.retry import LEASE_SECONDS, backoff_seconds
from app.webhooks.signing import sign_headers

logger = logging.getLogger(__name__)

CALLBACK_PATH = "/chatbot_platform/hooks/handoff"
TRANSCRIPT_MESSAGES = 40  # the last messages sent along; the whole transcript is in Odoo's Conversations
TRANSCRIPT_MESSAGE_CHARS = 4000
DEFAULT_MESSAGE = "Thank you. A member of our team will read this conversation and get back to you."


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def asks_for_human(widget: dict[str, Any], question: str) -> bool:
    phrases = [normalise(p) for p in widget.get("handoff_phrases") or []]
    text = normalise(question)
    return any(p and p in text for p in phrases)


def visitor_message(widget: dict[str, Any]) -> str:
    return str(widget.get("handoff_message") or DEFAULT_MESSAGE)


class HandoffService:
    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings

    async def request(self, key: ApiKey, session_id: UUID, reason: str, note: str | None = None) -> dict[str, Any]:
        """Mark the session and queue the notice (once); returns what the visitor is told."""
        chatbot = key.chatbot
        async with self.pool.acquire() as conn, conn.transaction():
            if not await repository.session_exists(conn, chatbot.id, session_id, key.kind):
                raise NotFound("no such session")
            first = await repository.mark_session(conn, chatbot.id, session_id, reason)
            if first and self.settings.odoo_url:
                messages = await repository.last_messages(conn, session_id, TRANSCRIPT_MESSAGES)
                payload = {
                    "chatbot": str(chatbot.id),
                    "session": str(session_id),
                    "reason": reason,
                    "note": note,
                    "transcript": [
                        {
                            "role": m["role"],
                            "content": m["content"][:TRANSCRIPT_MESSAGE_CHARS],
                            "created_at": m["created_at"].isoformat(),
                        }
                        for m in messages
                    ],
                }
                await repository.queue_notice(conn, chatbot.id, session_id, payload)
        return {"session_id": session_id, "message": visitor_message(chatbot.widget)}

    async def deliver_due(self, client: httpx.AsyncClient, batch: int = 20) -> int:
        if not self.settings.odoo_url:
            return 0
        rows = await repository.lease_due(self.pool, batch, float(LEASE_SECONDS))
        url = self.settings.odoo_url.rstrip("/") + CALLBACK_PATH
        delivered = 0
        for row in rows:
            error = await self._post(client, url, row["session_id"], row["payload"])
            if error is None:
                await repository.delete_notice(self.pool, row["id"])
                delivered += 1
            elif row["attempts"] >= self.settings.callback_max_attempts:
                logger.error("handoff notice dropped after retries", extra={"outbox_id": row["id"], "error": error})
                await repository.delete_notice(self.pool, row["id"])
            else:
                await repository.reschedule(self.pool, row["id"], error, backoff_seconds(row["attempts"]))
        return delivered

    async def _post(self, client: httpx.AsyncClient, url: str, session_id: UUID, payload: Any) -> str | None:
        body = json.dumps(payload).encode()
        headers = {
            "content-type": "application/json",
            **sign_headers(self.settings.webhook_secret, body, msg_id=f"handoff_{session_id}"),
        }
        try:
            response = await client.post(
                url, content=body, headers=headers, timeout=self.settings.callback_timeout_seconds
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"
