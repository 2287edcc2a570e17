"""`webhook_receipts`: the webhook-id of every signed delivery, applied or refused, for a while.

An applied delivery records its id with its effect, in its own transaction (`record_delivery`,
called by internal/delivery.py). A refusal has no transaction to join, so it is recorded with its
answer (`record_refused`): the same delivery presented again (a replay, or Odoo's manual retry of
the same outbox row) gets the same refusal, never "duplicate delivery", which Odoo counts as
delivered. Receipts older than WEBHOOK_RECEIPT_DAYS are swept (`sweep`, every
WEBHOOK_RECEIPT_SWEEP_SECONDS by `ReceiptSweeper`); a delivery re-sent after that is judged again
by its version (stale versions are ignored), so forgetting an old id never applies anything twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from app.db.pool import Connection
from app.errors import AppError

logger = logging.getLogger(__name__)
SWEEP_BATCH = 5000  # rows per DELETE: a large backlog never holds one long lock


class RefusedBefore(AppError):
    """The answer a refused delivery got the first time."""

    def __init__(self, status_code: int, error: str, detail: str) -> None:
        super().__init__(f"this delivery was refused before: {detail}")
        self.status_code = status_code
        self.error = error


async def record_delivery(conn: Connection, delivery_id: str) -> bool:
    """Remember a webhook-id inside the caller's transaction; False if it was seen before."""
    row = await conn.fetchrow(
        "INSERT INTO webhook_receipts (id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id", delivery_id
    )
    return row is not None


async def record_refused(pool: asyncpg.Pool, delivery_id: str, refusal: AppError) -> None:
    await pool.execute(
        """
        INSERT INTO webhook_receipts (id, refused_status, refused_error, refused_detail) VALUES ($1, $2, $3, $4)
        ON CONFLICT DO NOTHING
        """,
        delivery_id,
        refusal.status_code,
        refusal.error,
        refusal.detail[:2000],
    )


async def refusal_of(pool: asyncpg.Pool, delivery_id: str) -> RefusedBefore | None:
    row = await pool.fetchrow(
        "SELECT refused_status, refused_error, refused_detail FROM webhook_receipts"
        " WHERE id = $1 AND refused_status IS NOT NULL",
        delivery_id,
    )
    if row is None:
        return None
    return RefusedBefore(row["refused_status"], row["refused_error"], row["refused_detail"])


async def sweep(pool: asyncpg.Pool, older_than_days: float) -> int:
    """Delete receipts received more than `older_than_days` ago, in batches; return how many."""
    removed = 0
    while True:
        status = await pool.execute(
            """
            DELETE FROM webhook_receipts WHERE id IN (
                SELECT id FROM webhook_receipts WHERE received_at < now() - make_interval(secs => $1::float8 * 86400)
                LIMIT $2 FOR UPDATE SKIP LOCKED)
            """,
            older_than_days,
            SWEEP_BATCH,
        )
        count = int(status.rsplit(" ", 1)[-1])
        removed += count
        if count < SWEEP_BATCH:
            return removed


class ReceiptSweeper:
    """Runs `sweep` every `interval` seconds until stopped; safe in every API process at once."""

    def __init__(self, pool: asyncpg.Pool, older_than_days: float, interval: float) -> None:
        self.pool = pool
        self.older_than_days = older_than_days
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="webhook-receipt-sweep")

    async def _loop(self) -> None:
        while True:
            try:
                removed = await sweep(self.pool, self.older_than_days)
                if removed:
                    logger.info("old webhook receipts swept", extra={"removed": removed})
            except (OSError, asyncpg.PostgresError):
                logger.warning("could not sweep webhook receipts; will try again", exc_info=True)
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
