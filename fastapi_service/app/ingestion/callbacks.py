"""Source status callbacks to Odoo through a durable outbox.

`record_status` writes a row in the caller's transaction (so a status exists if and only if the
change it describes was committed), replacing any undelivered row of the same source: Odoo only
needs the newest state. `deliver_due` runs in the workers: it leases due rows, POSTs them signed
(Standard Webhooks; the `webhook-id` is stable per row so Odoo can dedupe retries), deletes
delivered rows and reschedules failures with exponential backoff. Nothing is written when
ODOO_URL is empty.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from app.config import Settings
from app.db.pool import Connection
from app.webhooks.retry import LEASE_SECONDS, backoff_seconds
from app.webhooks.signing import sign_headers

logger = logging.getLogger(__name__)

CALLBACK_PATH = "/chatbot_platform/hooks/source-status"


async def record_status(
    conn: Connection,
    settings: Settings,
    *,
    chatbot_id: UUID,
    source_id: UUID,
    version: int,
    state: str,
    chunks: int = 0,
    error: str | None = None,
    indexed_at: datetime | None = None,
    pages: dict[str, int] | None = None,
    progress: tuple[int, int] | None = None,
) -> None:
    if not settings.odoo_url:
        return
    payload = {
        "chatbot": str(chatbot_id),
        "source": str(source_id),
        "version": version,
        "state": state,
        "chunks": chunks,
        "error": error,
        "indexed_at": indexed_at.isoformat() if indexed_at else None,
    }
    if pages is not None:  # links: {indexed, skipped} of the last crawl
        payload["pages"] = pages
    if progress is not None:  # while processing: chunks embedded so far and in all
        payload["progress"] = {"done": progress[0], "total": progress[1]}
    await conn.execute("DELETE FROM source_status_outbox WHERE source_id = $1", source_id)
    await conn.execute(
        "INSERT INTO source_status_outbox (chatbot_id, source_id, version, payload) VALUES ($1, $2, $3, $4)",
        chatbot_id,
        source_id,
        version,
        payload,
    )


async def deliver_due(pool: asyncpg.Pool, settings: Settings, client: httpx.AsyncClient, batch: int = 20) -> int:
    """Send what is due; return how many were delivered."""
    if not settings.odoo_url:
        return 0
    rows = await pool.fetch(
        """
        UPDATE source_status_outbox SET attempts = attempts + 1,
               next_attempt_at = now() + make_interval(secs => $2)
        WHERE id IN (SELECT id FROM source_status_outbox WHERE next_attempt_at <= now()
                     ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING id, payload, attempts
        """,
        batch,
        float(LEASE_SECONDS),
    )
    delivered = 0
    url = settings.odoo_url.rstrip("/") + CALLBACK_PATH
    for row in rows:
        error = await _post(client, url, settings, row["id"], row["payload"])
        if error is None:
            await pool.execute("DELETE FROM source_status_outbox WHERE id = $1", row["id"])
            delivered += 1
        elif row["attempts"] >= settings.callback_max_attempts:
            logger.error("status callback dropped after retries", extra={"outbox_id": row["id"], "error": error})
            await pool.execute("DELETE FROM source_status_outbox WHERE id = $1", row["id"])
        else:
            await pool.execute(
                "UPDATE source_status_outbox SET last_error = $2, next_attempt_at = now() + make_interval(secs => $3)"
                " WHERE id = $1",
                row["id"],
                error,
                backoff_seconds(row["attempts"]),
            )
    return delivered


async def _post(client: httpx.AsyncClient, url: str, settings: Settings, row_id: int, payload: Any) -> str | None:
    # `seq` (the outbox row id, increasing with every status recorded) lets Odoo drop a status that
    # arrives after a newer one for the same version: two engine processes deliver concurrently.
    body = json.dumps({**payload, "seq": row_id}).encode()
    headers = {
        "content-type": "application/json",
        **sign_headers(settings.webhook_secret, body, msg_id=f"status_{payload['source']}_{row_id}"),
    }
    try:
        response = await client.post(url, content=body, headers=headers, timeout=settings.callback_timeout_seconds)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"
