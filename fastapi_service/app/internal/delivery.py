"""How every signed write from Odoo is applied, once: dedupe -> lock -> stale check -> apply.

In one transaction: the delivery's webhook-id is recorded (a replay is a no-op: "duplicate
delivery"), the target row is locked (its current version read), a version not newer than the
current one is ignored ("stale version"), and only then is the change applied. Chatbot and source
routes differ only in what they lock and apply; the protocol is written here, once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import asyncpg

from app.db.pool import Connection
from app.internal.receipts import record_delivery

T = TypeVar("T")
# Why a delivery was acknowledged without being applied (contract/status_codes.json "reasons").
IgnoredReason = Literal["duplicate_delivery", "stale_version", "chatbot_deleted"]


@dataclass(frozen=True)
class Ignored:
    """The delivery changes nothing; `reason` and `detail` say why (answered as
    `{applied: false, reason, detail}`)."""

    reason: IgnoredReason
    detail: str


DUPLICATE = Ignored("duplicate_delivery", "duplicate delivery")


async def apply_once(
    conn: Connection,
    delivery_id: str,
    version: int,
    lock: Callable[[], Awaitable[asyncpg.Record | Ignored | None]],
    apply: Callable[[asyncpg.Record | None], Awaitable[T]],
) -> T | Ignored:
    """Run the protocol in one transaction.

    `lock` locks the target and returns its row (with a `version` column), None when it does not
    exist yet, or `Ignored` when the delivery must not apply (e.g. the chatbot is deleted); it may
    raise to refuse the delivery. `apply` gets the locked row and makes the change.
    """
    async with conn.transaction():
        if not await record_delivery(conn, delivery_id):
            return DUPLICATE
        current = await lock()
        if isinstance(current, Ignored):
            return current
        if current is not None and current["version"] >= version:
            return Ignored("stale_version", f"stale version {version} <= {current['version']}")
        return await apply(current)
