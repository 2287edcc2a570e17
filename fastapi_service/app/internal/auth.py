"""`InternalAuthDep`: a signed, size-capped, fresh Odoo delivery, parsed as bounded JSON.

The signature covers method, path (+ query) and body (see webhooks/signing.py), so a delivery is
valid for exactly the request it was made for. Reads (GET) get a shorter timestamp window. A
signed write the engine refuses (4xx) has its webhook-id recorded, so the same delivery cannot be
presented again: it gets the same refusal (internal/receipts.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from app import wire
from app.deps import PoolDep, SettingsDep
from app.errors import AppError, PayloadTooLarge, Unauthorized, Unprocessable
from app.internal import receipts
from app.observability.context import bind_chatbot
from app.webhooks.signing import InvalidSignature, request_envelope, verify


@dataclass(frozen=True)
class SignedDelivery:
    id: str  # webhook-id, recorded with the effect to make replays no-ops
    payload: dict[str, Any]


async def _read_capped(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise PayloadTooLarge(f"request body exceeds the {cap} byte limit")
    body = bytearray()
    async for piece in request.stream():
        body.extend(piece)
        if len(body) > cap:
            raise PayloadTooLarge(f"request body exceeds the {cap} byte limit")
    return bytes(body)


def request_target(request: Request) -> str:
    """The path exactly as sent, plus `?query` when present: what the sender signed."""
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
    query = request.scope.get("query_string") or b""
    target = raw_path.decode("latin-1")
    return f"{target}?{query.decode('latin-1')}" if query else target


async def signed_delivery(request: Request, settings: SettingsDep, pool: PoolDep) -> AsyncIterator[SignedDelivery]:
    if "chatbot_id" in request.path_params:
        bind_chatbot(request.path_params["chatbot_id"])
    body = await _read_capped(request, settings.webhook_max_body_bytes)
    is_read = request.method in ("GET", "HEAD")
    tolerance = settings.webhook_read_tolerance_seconds if is_read else settings.webhook_tolerance_seconds
    try:
        delivery_id = verify(
            settings.webhook_secret,
            request_envelope(request.method, request_target(request), body),
            dict(request.headers),
            tolerance_seconds=tolerance,
        )
    except InvalidSignature as exc:
        raise Unauthorized(f"invalid webhook signature: {exc}") from exc
    if not is_read and (earlier := await receipts.refusal_of(pool, delivery_id)) is not None:
        raise earlier
    try:
        try:
            payload = wire.loads(body, settings.json_max_depth) if body else {}
        except wire.BadJson as exc:
            raise Unprocessable(str(exc)) from exc
        if not isinstance(payload, dict):
            raise Unprocessable("body must be a JSON object")
        yield SignedDelivery(delivery_id, payload)
    except AppError as exc:
        if not is_read and 400 <= exc.status_code < 500 and exc.status_code not in (408, 429):
            await receipts.record_refused(pool, delivery_id, exc)
        raise


InternalAuthDep = Annotated[SignedDelivery, Depends(signed_delivery)]
