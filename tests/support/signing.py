"""Signed requests to the internal API, as Odoo sends them (method + path + body, see signing.py)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from app.webhooks.signing import request_envelope, sign_headers

TEST_SECRET = "whsec_" + "dGVzdC1zZWNyZXQtZm9yLXRoZS1lbmdpbmUtdGVzdHMh"  # base64 of 32 bytes


def signed(method: str, url: str, payload: Any, *, secret: str = TEST_SECRET, **kw: Any) -> httpx.Request:
    body = b"" if payload is None else json.dumps(payload).encode()
    request = httpx.Request(method, url, content=body, headers={"content-type": "application/json"} if body else {})
    target = request.url.raw_path.decode("ascii")  # path + query, as it goes on the wire
    request.headers.update(sign_headers(secret, request_envelope(method, target, body), **kw))
    return request


async def send_signed(client: httpx.AsyncClient, method: str, path: str, payload: Any, **kw: Any) -> httpx.Response:
    request = signed(method, str(client.base_url.join(path)), payload, **kw)
    return await client.send(request)


def get_signed(url: str, *, secret: str = TEST_SECRET, timeout: float = 10) -> httpx.Response:
    """A signed GET from a synchronous test (e.g. a source listing)."""
    with httpx.Client(timeout=timeout) as client:
        return client.send(signed("GET", url, None, secret=secret))
