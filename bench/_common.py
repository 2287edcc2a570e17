"""Helpers shared by the benchmarks: signed internal requests and waiting for readiness."""

from __future__ import annotations

import asyncio
import json

import httpx

from app.webhooks.signing import sign_headers


async def signed(
    client: httpx.AsyncClient, secret: str, method: str, path: str, payload: dict | None
) -> httpx.Response:
    """An internal-API request signed as Odoo signs it (Standard Webhooks v1)."""
    body = b"" if payload is None else json.dumps(payload).encode()
    headers = {"content-type": "application/json", **sign_headers(secret, body)}
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
