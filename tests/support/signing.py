"""Signed requests to the internal API, as Odoo sends them."""

from __future__ import annotations

import json
from typing import Any

import httpx

from app.webhooks.signing import sign_headers

TEST_SECRET = "whsec_" + "dGVzdC1zZWNyZXQtZm9yLXRoZS1lbmdpbmUtdGVzdHMh"  # base64 of 32 bytes


def signed(method: str, url: str, payload: Any, *, secret: str = TEST_SECRET, **kw: Any) -> httpx.Request:
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json", **sign_headers(secret, body, **kw)}
    return httpx.Request(method, url, content=body, headers=headers)


async def send_signed(client: httpx.AsyncClient, method: str, path: str, payload: Any, **kw: Any) -> httpx.Response:
    request = signed(method, str(client.base_url.join(path)), payload, **kw)
    return await client.send(request)
