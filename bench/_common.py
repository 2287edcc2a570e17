"""Helpers shared by the benchmarks: signed internal requests and waiting for readiness."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from app.webhooks.signing import request_envelope, sign_headers


async def signed(
    client: httpx.AsyncClient, secret: str, method: str, path: str, payload: dict | None
) -> httpx.Response:
    """An internal-API request signed as Odoo signs it (Standard Webhooks v1 over method + path + body)."""
    body = b"" if payload is None else json.dumps(payload).encode()
    target = httpx.URL(path).raw_path.decode("ascii")
    headers = {"content-type": "application/json", **sign_headers(secret, request_envelope(method, target, body))}
    return await client.request(method, path, content=body, headers=headers)


async def wait_ready(client: httpx.AsyncClient, attempts: int = 600) -> None:
    """Poll /readyz once a second until it answers 200."""
    for _ in range(attempts):
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(1)
    raise SystemExit("the engine did not become ready")


class KeepAliveClient:
    """A minimal HTTP/1.1 keep-alive client for load and probes.

    httpx spends ~1.5 ms of CPU per request; with 32 clients on a 2-core machine the load
    generator then takes a third of the CPU from the server it measures, and a health prober
    takes it from the pipeline it watches. This client writes the
    request bytes and reads a Content-Length body (all uvicorn sends for JSON), nothing else.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, payload: dict, headers: dict[str, str]) -> tuple[int, bytes]:
        body = json.dumps(payload).encode()
        return await self.request("POST", path, body, {"Content-Type": "application/json", **headers})

    async def get(self, path: str) -> tuple[int, bytes]:
        return await self.request("GET", path, b"", {})

    async def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status_line, *lines = (await self._reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        fields = dict(line.split(": ", 1) for line in lines if ": " in line)
        length = int({k.lower(): v for k, v in fields.items()}["content-length"])
        return int(status_line.split(" ", 2)[1]), await self._reader.readexactly(length)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


async def embedded_database(directory: Path) -> tuple[Any, str]:
    """A throw-away PostgreSQL + pgvector (pgserver) under `directory` with an empty database `rag`:
    (the server, to `cleanup()` at the end; the database's DSN)."""
    import asyncpg
    import pgserver

    server = pgserver.get_server(directory, cleanup_mode="stop")
    admin = await asyncpg.connect(str(server.get_uri("postgres")))
    await admin.execute("CREATE DATABASE rag")
    await admin.close()
    return server, str(server.get_uri("rag"))
