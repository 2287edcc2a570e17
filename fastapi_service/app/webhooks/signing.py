"""Standard Webhooks v1 signing and verification (both directions: Odoo -> engine, engine -> Odoo).

Wraps the `standardwebhooks` library so every malformed input becomes one `InvalidSignature`.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class InvalidSignature(Exception):
    """The request is not a valid, fresh, correctly signed delivery."""


def sign_headers(
    secret: str, body: bytes, *, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    ts = int(time.time()) if timestamp is None else timestamp
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=UTC), body.decode("utf-8"))
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def verify(secret: str, body: bytes, headers: dict[str, str]) -> str:
    """Check signature and timestamp (±5 minutes); return the `webhook-id`."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        Webhook(secret).verify(body, lowered, json_parse=False)
    except WebhookVerificationError as exc:
        raise InvalidSignature(str(exc)) from exc
    except (ValueError, TypeError, UnicodeDecodeError) as exc:  # malformed header or body
        raise InvalidSignature("malformed signature headers or body") from exc
    return lowered["webhook-id"]
