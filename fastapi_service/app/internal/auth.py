"""`InternalAuthDep`: a signed, size-capped, fresh Odoo delivery, parsed as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from app.deps import SettingsDep
from app.errors import PayloadTooLarge, Unauthorized, Unprocessable
from app.observability.context import bind_chatbot
from app.webhooks.signing import InvalidSignature, verify


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


async def signed_delivery(request: Request, settings: SettingsDep) -> SignedDelivery:
    if "chatbot_id" in request.path_params:
        bind_chatbot(request.path_params["chatbot_id"])
    body = await _read_capped(request, settings.webhook_max_body_bytes)
    try:
        delivery_id = verify(settings.webhook_secret, body, dict(request.headers))
    except InvalidSignature as exc:
        raise Unauthorized(f"invalid webhook signature: {exc}") from exc
    if not body:
        return SignedDelivery(delivery_id, {})
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise Unprocessable("body is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise Unprocessable("body must be a JSON object")
    return SignedDelivery(delivery_id, payload)


InternalAuthDep = Annotated[SignedDelivery, Depends(signed_delivery)]
