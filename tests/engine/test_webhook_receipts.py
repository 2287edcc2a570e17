"""`webhook_receipts` is bounded: receipts older than WEBHOOK_RECEIPT_DAYS are swept, by the engine
itself, and a delivery re-sent after its receipt was swept still never applies twice."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest

from app.internal import receipts
from tests.conftest import make_settings
from tests.engine.test_internal_chatbots import chatbot_payload
from tests.support.signing import signed


async def receipt_ids(db: asyncpg.Connection) -> set[str]:
    return {r["id"] for r in await db.fetch("SELECT id FROM webhook_receipts")}


async def test_receipts_older_than_the_retention_are_swept_and_newer_ones_kept(db, db_url, monkeypatch):
    monkeypatch.setattr(receipts, "SWEEP_BATCH", 2)  # several batches: the loop runs until none is left
    await db.execute(
        """
        INSERT INTO webhook_receipts (id, received_at, refused_status) SELECT 'old-' || i, now() - interval '31 days',
            CASE WHEN i % 2 = 0 THEN 422 END FROM generate_series(1, 5) AS i
        """
    )
    await db.execute(
        "INSERT INTO webhook_receipts (id, received_at) VALUES ('recent', now() - interval '29 days'), ('now', now())"
    )
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    try:
        assert await receipts.sweep(pool, 30) == 5
        assert await receipts.sweep(pool, 30) == 0
    finally:
        await pool.close()
    assert await receipt_ids(db) == {"recent", "now"}


async def test_the_engine_sweeps_old_receipts_on_its_own(app_factory, db_url, db):
    await app_factory(make_settings(database_url=db_url, webhook_receipt_days=1, webhook_receipt_sweep_seconds=0.05))
    await db.execute("INSERT INTO webhook_receipts (id, received_at) VALUES ('stale', now() - interval '2 days')")
    await db.execute("INSERT INTO webhook_receipts (id) VALUES ('fresh')")
    deadline = time.monotonic() + 30
    while "stale" in await receipt_ids(db):
        assert time.monotonic() < deadline, "the old receipt was never swept"
        await asyncio.sleep(0.05)
    assert await receipt_ids(db) == {"fresh"}


async def test_a_delivery_resent_after_its_receipt_was_swept_is_stale_not_applied_again(client, db):
    bot = uuid.uuid4()
    url = f"http://engine.test/internal/v1/chatbots/{bot}"
    first = signed("PUT", url, chatbot_payload(1))
    assert (await client.send(first)).json()["applied"] is True
    await db.execute("UPDATE chatbots SET name = 'changed locally' WHERE id = $1", bot)
    await db.execute("UPDATE webhook_receipts SET received_at = now() - interval '400 days'")
    await client.services.receipt_sweeper.stop()  # no race with the engine's own sweep
    pool = client.services.pool
    assert await receipts.sweep(pool, 30) == 1
    again = await client.send(signed("PUT", url, chatbot_payload(1), msg_id=first.headers["webhook-id"]))
    assert again.json() == {"applied": False, "reason": "stale_version", "detail": "stale version 1 <= 1"}
    assert await db.fetchval("SELECT name FROM chatbots WHERE id = $1", bot) == "changed locally"


@pytest.mark.parametrize("days", [0, 0.5, 3651])
def test_the_retention_is_bounded(days):
    with pytest.raises(ValueError, match="webhook_receipt_days"):
        make_settings(webhook_receipt_days=days)
