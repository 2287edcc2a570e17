"""Resolve a presented key to its chatbot: format check, SHA-256 lookup, short cache, expiry.

The cache lives at most `key_cache_seconds` (capped at 60 s by the settings), so a key revoked in
Odoo (deleted from `api_keys` on the next chatbot PUT) stops working in every process within that
time. Expiry is checked on every request, cached or not. Last-used times are batched in memory and
written by a background flush, never on the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from app.keys import repository
from app.keys.format import key_hash, parse_key

logger = logging.getLogger(__name__)
NEGATIVE_CACHE_SECONDS = 2.0  # unknown keys: short, so a newly added key works almost at once
MAX_CACHE_ENTRIES = 50_000


@dataclass(frozen=True)
class Chatbot:
    id: UUID
    name: str
    language: str
    prompts: dict[str, Any]
    generation: dict[str, Any]
    allowed_domains: list[str]
    rate_limits: dict[str, Any]
    widget: dict[str, Any]
    created_at: datetime | None = None


@dataclass(frozen=True)
class ApiKey:
    id: UUID
    kind: str  # publishable | secret
    expires_at: datetime | None
    chatbot: Chatbot

    @property
    def is_secret(self) -> bool:
        return self.kind == "secret"

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))


@dataclass
class KeyResolver:
    pool: asyncpg.Pool
    cache_seconds: float
    _cache: dict[str, tuple[float, ApiKey | None]] = field(default_factory=dict)
    _touched: set[UUID] = field(default_factory=set)
    _flusher: asyncio.Task[None] | None = None

    async def resolve(self, presented: str) -> ApiKey | None:
        """The live key for `presented`, or None (malformed, unknown, revoked, expired)."""
        kind = parse_key(presented)
        if kind is None:
            return None
        digest = key_hash(presented)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            key = cached[1]
        else:
            key = await self._load(digest)
            ttl = self.cache_seconds if key is not None else min(self.cache_seconds, NEGATIVE_CACHE_SECONDS)
            if len(self._cache) >= MAX_CACHE_ENTRIES:
                self._cache.clear()
            self._cache[digest] = (now + ttl, key)
        if key is None or key.kind != kind or key.expired():
            return None
        self._touched.add(key.id)
        return key

    def forget_chatbot(self, chatbot_id: UUID) -> None:
        """Drop the cached keys of a chatbot that changed (allowed domains, prompts, deletion)."""
        stale = [d for d, (_t, key) in self._cache.items() if key is not None and key.chatbot.id == chatbot_id]
        for digest in stale:
            self._cache.pop(digest, None)

    async def _load(self, digest: str) -> ApiKey | None:
        async with self.pool.acquire() as conn:
            row = await repository.find_key(conn, digest)
        if row is None:
            return None
        chatbot = Chatbot(
            id=row["chatbot_id"],
            name=row["name"],
            language=row["language"],
            prompts=row["prompts"] or {},
            generation=row["generation"] or {},
            allowed_domains=list(row["allowed_domains"] or []),
            rate_limits=row["rate_limits"] or {},
            widget=row["widget"] or {},
            created_at=row["created_at"],
        )
        return ApiKey(id=row["key_id"], kind=row["kind"], expires_at=row["expires_at"], chatbot=chatbot)

    async def flush(self) -> None:
        if not self._touched:
            return
        batch, self._touched = self._touched, set()
        try:
            async with self.pool.acquire() as conn:
                await repository.touch_keys(conn, batch)
        except (OSError, asyncpg.PostgresError):
            logger.warning("could not record key usage; will retry", exc_info=True)
            self._touched |= batch

    def start(self, interval: float = 15.0) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                await self.flush()

        self._flusher = asyncio.create_task(loop(), name="key-usage-flush")

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()
