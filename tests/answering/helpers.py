"""Helpers for answering tests: keys, chatbots through the signed internal API, chunks inserted directly.

Chunks are embedded with the real model and INSERTed into `chunks` (the BM25 triggers index them),
which is what the ingestion pipeline does at the end of a job.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import httpx

from app.embedding.service import EmbeddingService
from app.keys.format import generate_key, key_hash
from tests.support.signing import send_signed

_versions: dict[uuid.UUID, int] = {}


class Bot:
    """A chatbot created through the internal API, with one publishable and one secret key."""

    def __init__(self, bot_id: uuid.UUID, pk: str, sk: str, payload: dict[str, Any]) -> None:
        self.id = bot_id
        self.pk = pk
        self.sk = sk
        self.payload = payload

    def sk_headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.sk}", **extra}

    def pk_headers(self, origin: str = "https://shop.example.com", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.pk}", "Origin": origin, **extra}


def key_entry(key: str, kind: str, expires_at: str | None = None) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "kind": kind,
        "prefix": key[:11],
        "sha256": key_hash(key),
        "expires_at": expires_at,
    }


async def put_chatbot(client: httpx.AsyncClient, bot_id: uuid.UUID, payload: dict[str, Any]) -> None:
    _versions[bot_id] = _versions.get(bot_id, 0) + 1
    payload = {**payload, "version": _versions[bot_id]}
    r = await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot_id}", payload)
    assert r.status_code == 200 and r.json()["applied"], r.text


async def create_bot(client: httpx.AsyncClient, **overrides: Any) -> Bot:
    bot_id = uuid.uuid4()
    pk, sk = generate_key("publishable"), generate_key("secret")
    payload: dict[str, Any] = {
        "tenant": "db:1",
        "name": "Support bot",
        "active": True,
        "language": "en",
        "prompts": {"system": "You answer questions about Acme products.", "user_template": ""},
        "generation": {"model": None, "temperature": 0.1, "max_tokens": 128, "top_k": 4},
        "allowed_domains": ["shop.example.com", "*.acme.test"],
        "api_keys": [key_entry(pk, "publishable"), key_entry(sk, "secret")],
        "rate_limits": {"key_per_minute": None, "ip_per_minute": None},
        "widget": {"title": "Acme help", "color": "#112233", "welcome": "Hello!", "suggestions": ["Returns?"]},
    }
    payload.update(overrides)
    await put_chatbot(client, bot_id, payload)
    return Bot(bot_id, pk, sk, payload)


async def insert_chunks(
    db: asyncpg.Connection,
    embedder: EmbeddingService,
    chatbot_id: uuid.UUID,
    texts: Sequence[str],
    *,
    source_id: uuid.UUID | None = None,
    name: str = "Handbook.pdf",
    url: str | None = None,
) -> list[int]:
    """Embed `texts` and store them as one source's chunks; returns chunk ids."""
    source_id = source_id or uuid.uuid4()
    await db.execute(
        """
        INSERT INTO sources (id, chatbot_id, version, kind, name, state, indexed_version)
        VALUES ($1, $2, 1, 'document', $3, 'ready', 1) ON CONFLICT (id) DO NOTHING
        """,
        source_id,
        chatbot_id,
        name,
    )
    vectors = await embedder.embed(list(texts), purpose="test")
    ids = []
    for ordinal, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
        metadata = {"title": name, "heading": None, "page": None, "url": url}
        ids.append(
            await db.fetchval(
                """
                INSERT INTO chunks (chatbot_id, source_id, source_version, ordinal, content, metadata, embedding)
                VALUES ($1, $2, 1, $3, $4, $5, $6) RETURNING id
                """,
                chatbot_id,
                source_id,
                ordinal,
                text,
                metadata,
                vector,
            )
        )
    return ids


def parse_sse(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.split("\n\n"):
        event, data = None, None
        for line in block.splitlines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data = json.loads(line[5:].strip())
        if event:
            events.append((event, data or {}))
    return events


HANDBOOK = [
    "Returns: you can return any Acme product within 30 days of delivery for a full refund.",
    "Shipping: orders over 50 euros ship for free; standard delivery takes 3 to 5 working days.",
    "The Acme Rocket Skates have a top speed of 40 km/h and a battery that lasts two hours.",
    "Warranty: every Acme gadget carries a two-year warranty covering manufacturing defects.",
    "Customer support is available by phone from 9:00 to 17:00 CET, Monday to Friday.",
    "To reset your Acme account password, click 'Forgot password' on the sign-in page.",
]


class LiveServer:
    """Serve an already-started app (lifespan entered by app_factory) over real TCP on 127.0.0.1."""

    def __init__(self, app: Any) -> None:
        import socket

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="off", log_config=None)
        self.server = uvicorn.Server(config)
        self.task: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> LiveServer:
        import asyncio

        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        await self.task


async def signed_get(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """A GET as Odoo sends it: method and path signed, over an empty body."""
    from tests.support.signing import send_signed

    return await send_signed(client, "GET", path, None)


def answering_settings(**overrides: Any) -> Any:
    """Test settings without in-process ingestion workers: these tests insert chunks themselves."""
    from tests.conftest import make_settings

    return make_settings(**{"workers_in_process": False, **overrides})
