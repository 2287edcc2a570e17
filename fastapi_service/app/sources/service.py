"""Rules for applying source deliveries: newest version wins, tombstones, replays are no-ops.

A PUT records the desired version and queues its ingestion job in one transaction and answers
at once; parsing and embedding happen in the workers. A source may arrive before its chatbot
(Odoo delivers independently): it is stored and indexed under its chatbot id, and nothing is
searchable until an API key resolves to that chatbot. A source of a tombstoned chatbot is ignored.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg

from app.config import Settings
from app.db.pool import Connection
from app.errors import Conflict, Unprocessable
from app.ingestion import callbacks, queue
from app.internal.delivery import Ignored, apply_once
from app.sources import repository
from app.sources.schemas import Progress, SourceAccepted, SourcePut, SourceStatus

INLINE_DECODE_BYTES = 256 * 1024  # larger documents are decoded off the event loop


@dataclass
class Prepared:
    spec: dict[str, Any]
    content: bytes | None = None
    error: str | None = None  # recorded as a failed source at once: no job is queued


def _decode_document(body: SourcePut, settings: Settings) -> Prepared:
    doc = body.document
    assert doc is not None
    spec: dict[str, Any] = {"filename": doc.filename, "mimetype": doc.mimetype, "sha256": doc.sha256}
    # Cheap size check before decoding: 4 base64 chars carry 3 bytes.
    if len(doc.content_base64) * 3 // 4 > settings.max_document_bytes + 3:
        size = len(doc.content_base64) * 3 // 4
        return Prepared(spec, error=f"the file is about {size:,} bytes; the limit is {settings.max_document_bytes:,}")
    try:
        content = base64.b64decode(doc.content_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unprocessable("document.content_base64: not valid base64") from exc
    spec["size"] = len(content)
    if len(content) > settings.max_document_bytes:
        return Prepared(spec, error=f"the file is {len(content):,} bytes; the limit is {settings.max_document_bytes:,}")
    if doc.sha256 and hashlib.sha256(content).hexdigest() != doc.sha256.lower():
        return Prepared(spec, error="the content does not match its sha256; the upload was corrupted")
    return Prepared(spec, content=content)


def _link_spec(body: SourcePut, settings: Settings) -> Prepared:
    link = body.link
    assert link is not None
    url = link.url.strip()
    spec: dict[str, Any] = {
        "url": url,
        "max_depth": link.max_depth,
        "max_pages": link.max_pages,
        "refresh_hours": link.refresh_hours or None,
    }
    # Never capped silently: a link asking for more than this engine crawls fails with the reason.
    if link.max_depth > settings.crawl_max_depth:
        return Prepared(
            spec, error=f"max_depth {link.max_depth} is above this engine's limit of {settings.crawl_max_depth}"
        )
    if link.max_pages > settings.crawl_max_pages:
        return Prepared(
            spec, error=f"max_pages {link.max_pages} is above this engine's limit of {settings.crawl_max_pages}"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Prepared(spec, error="only absolute http:// and https:// links can be ingested")
    return Prepared(spec)


async def prepare(body: SourcePut, settings: Settings) -> Prepared:
    if body.kind == "link":
        return _link_spec(body, settings)
    assert body.document is not None
    if len(body.document.content_base64) > INLINE_DECODE_BYTES:
        return await asyncio.to_thread(_decode_document, body, settings)
    return _decode_document(body, settings)


def _metadata_only(current: asyncpg.Record | None, body: SourcePut, prepared: Prepared, settings: Settings) -> bool:
    """True when the new version changes nothing that ingestion reads: same kind, same document
    (sha256, size, name, type) or link settings, and the current version is indexed and ready.
    With contextual chunks the name is read too (the title embedded with every chunk of a
    document that has none of its own): a rename re-embeds."""
    return (
        current is not None
        and not current["deleted"]
        and prepared.error is None
        and current["state"] == "ready"
        and current["indexed_version"] == current["version"]
        and current["kind"] == body.kind
        and current["spec"] == prepared.spec
        and (body.kind == "link" or bool(prepared.spec.get("sha256")))  # same bytes, by their hash
        and (body.kind == "link" or not settings.contextual_chunks or current["name"] == body.name)
    )


async def _lock_source(
    conn: Connection, chatbot_id: UUID, source_id: UUID, *, ignore_deleted_chatbot: bool
) -> asyncpg.Record | Ignored | None:
    """Lock the chatbot FOR SHARE (source writes of one chatbot run in parallel, but not alongside
    its DELETE), then the source FOR UPDATE; a source id of another chatbot is refused."""
    chatbot = await repository.lock_chatbot_shared(conn, chatbot_id)
    if ignore_deleted_chatbot and chatbot is not None and chatbot["deleted"]:
        return Ignored("chatbot_deleted", "the chatbot is deleted; source ignored")
    current = await repository.lock_source(conn, source_id)
    if current is not None and current["chatbot_id"] != chatbot_id:
        raise Conflict("this source id belongs to another chatbot")
    return current


def _answer(outcome: SourceAccepted | Ignored) -> SourceAccepted:
    if isinstance(outcome, Ignored):
        return SourceAccepted(applied=False, reason=outcome.reason, detail=outcome.detail)
    return outcome


async def put_source(
    conn: Connection,
    settings: Settings,
    delivery_id: str,
    chatbot_id: UUID,
    source_id: UUID,
    body: SourcePut,
) -> SourceAccepted:
    prepared = await prepare(body, settings)

    async def apply(current: asyncpg.Record | None) -> SourceAccepted:
        if current is not None and _metadata_only(current, body, prepared, settings):
            # A rename (or a replay of the same file under a new version): nothing to re-embed.
            await repository.update_metadata(conn, source_id, body.version, body.name)
            await callbacks.record_status(
                conn,
                settings,
                chatbot_id=chatbot_id,
                source_id=source_id,
                version=body.version,
                state="ready",
                chunks=current["chunk_count"],
                indexed_at=current["indexed_at"],
            )
            return SourceAccepted(applied=True, detail="metadata updated; the content is unchanged and stays indexed")
        state = "failed" if prepared.error else "queued"
        await repository.upsert_source(
            conn,
            source_id=source_id,
            chatbot_id=chatbot_id,
            version=body.version,
            kind=body.kind,
            name=body.name,
            spec=prepared.spec,
            content=prepared.content,
            state=state,
            error=prepared.error,
        )
        job = None if prepared.error else await queue.defer_ingest(conn, source_id, body.version)
        await callbacks.record_status(
            conn,
            settings,
            chatbot_id=chatbot_id,
            source_id=source_id,
            version=body.version,
            state=state,
            error=prepared.error,
        )
        return SourceAccepted(applied=True, job=job, detail=prepared.error or "")

    def lock() -> Awaitable[asyncpg.Record | Ignored | None]:
        return _lock_source(conn, chatbot_id, source_id, ignore_deleted_chatbot=True)

    return _answer(await apply_once(conn, delivery_id, body.version, lock, apply))


async def delete_source(
    conn: Connection, delivery_id: str, chatbot_id: UUID, source_id: UUID, version: int
) -> SourceAccepted:
    async def apply(_current: asyncpg.Record | None) -> SourceAccepted:
        await repository.tombstone_source(conn, source_id, chatbot_id, version)
        return SourceAccepted(applied=True)

    def lock() -> Awaitable[asyncpg.Record | Ignored | None]:
        return _lock_source(conn, chatbot_id, source_id, ignore_deleted_chatbot=False)

    return _answer(await apply_once(conn, delivery_id, version, lock, apply))


async def list_sources(conn: Connection, chatbot_id: UUID) -> list[SourceStatus]:
    rows = await repository.list_sources(conn, chatbot_id)
    return [
        SourceStatus(
            source=r["id"],
            version=r["version"],
            kind=r["kind"],
            name=r["name"],
            state=r["state"],
            chunks=r["chunk_count"],
            error=r["error"],
            indexed_version=r["indexed_version"],
            indexed_at=r["indexed_at"],
            progress=Progress(done=r["chunks_done"], total=r["chunks_total"])
            if r["state"] == "processing" and r["chunks_total"] is not None
            else None,
        )
        for r in rows
    ]
