"""Webhook-ids of signed deliveries the engine refused, kept with the refusal.

Applied deliveries record their id with their effect, in their own transaction (see
chatbots/repository.record_delivery). A refusal has no transaction to join, so it is recorded
here with its answer: the same delivery presented again (a replay, or Odoo's manual retry of the
same outbox row) gets the same refusal, never "duplicate delivery", which Odoo counts as delivered.
"""

from __future__ import annotations

import asyncpg

from app.errors import AppError


class RefusedBefore(AppError):
    """The answer a refused delivery got the first time."""

    def __init__(self, status_code: int, error: str, detail: str) -> None:
        super().__init__(f"this delivery was refused before: {detail}")
        self.status_code = status_code
        self.error = error


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
