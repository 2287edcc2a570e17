"""Helpers for the ingestion tests: payloads as Odoo sends them, and waiting for job outcomes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import time
import uuid
from typing import Any

import asyncpg

from tests.support.signing import send_signed

WORDS = (
    "invoice shipping refund warranty battery charger keyboard monitor cable adapter account password "
    "delivery return policy customer support order tracking payment card subscription upgrade license "
    "install update driver firmware network router printer scanner laptop desktop tablet phone screen"
).split()


def prose(words: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    sentences, count = [], 0
    while count < words:
        n = rng.randint(6, 18)
        sentences.append(" ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + ".")
        count += n
    paragraphs = [" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5)]
    return "\n\n".join(paragraphs)


def document(version: int, data: bytes, filename: str = "doc.txt", mimetype: str = "", name: str | None = None) -> dict:
    return {
        "version": version,
        "kind": "document",
        "name": name or filename,
        "document": {
            "filename": filename,
            "mimetype": mimetype,
            "sha256": hashlib.sha256(data).hexdigest(),
            "content_base64": base64.b64encode(data).decode(),
        },
    }


def link(version: int, url: str, max_depth: int = 0, max_pages: int = 1, refresh_hours: float | None = None) -> dict:
    return {
        "version": version,
        "kind": "link",
        "name": url,
        "link": {"url": url, "max_depth": max_depth, "max_pages": max_pages, "refresh_hours": refresh_hours},
    }


async def put_source(client: Any, bot: uuid.UUID, source: uuid.UUID, payload: dict, **kw: Any) -> Any:
    return await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}/sources/{source}", payload, **kw)


async def delete_source(client: Any, bot: uuid.UUID, source: uuid.UUID, version: int) -> Any:
    return await send_signed(client, "DELETE", f"/internal/v1/chatbots/{bot}/sources/{source}", {"version": version})


async def wait_settled(db: asyncpg.Connection, source: uuid.UUID, version: int, timeout: float = 120) -> asyncpg.Record:
    """Wait until `version` of the source is ready or failed (its job finished)."""
    deadline = time.monotonic() + timeout
    while True:
        row = await db.fetchrow("SELECT * FROM sources WHERE id = $1", source)
        if row is not None and row["version"] == version and row["state"] in ("ready", "failed"):
            if row["state"] == "failed" or row["indexed_version"] == version:
                return row
        if time.monotonic() > deadline:
            raise TimeoutError(f"source {source} v{version} not settled: {dict(row) if row else None}")
        await asyncio.sleep(0.1)


async def wait_jobs_idle(db: asyncpg.Connection, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while await db.fetchval("SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"):
        if time.monotonic() > deadline:
            raise TimeoutError("jobs still running")
        await asyncio.sleep(0.1)


async def list_sources(client: Any, bot: uuid.UUID, **kw: Any) -> Any:
    """GET is signed over method, path and an empty body, as Odoo sends it."""
    from tests.support.signing import send_signed

    return await send_signed(client, "GET", f"/internal/v1/chatbots/{bot}/sources", None, **kw)
