"""Standard Webhooks v1 signing and verification (both directions: Odoo -> engine, engine -> Odoo).

Wraps the `standardwebhooks` library so every malformed input becomes one `InvalidSignature`.

Requests to the internal API sign a *request envelope*, not the bare body: `"{METHOD} {target}\\n"`
followed by the raw body, where target is the path as sent plus `?query` when there is one. The
HMAC scheme, headers and tolerance are Standard Webhooks v1 unchanged (any of its libraries can
sign the envelope); binding method and path means signed headers for one request cannot be
replayed against another route or another chatbot. Status callbacks (engine -> Odoo) go to one
fixed route whose body names its target, and sign the body alone.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# A webhook-id is an opaque token; bounded and printable so it can be stored and logged safely.
WEBHOOK_ID_RE = re.compile(r"^[!-~]{1,200}$")


class InvalidSignature(Exception):
    """The request is not a valid, fresh, correctly signed delivery."""


def request_envelope(method: str, target: str, body: bytes) -> bytes:
    """What an internal API request signs: method, path (+ query) and body."""
    return f"{method.upper()} {target}\n".encode() + body


def sign_headers(
    secret: str, content: bytes, *, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    ts = int(time.time()) if timestamp is None else timestamp
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=UTC), content.decode("utf-8"))
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def verify(secret: str, content: bytes, headers: dict[str, str], *, tolerance_seconds: float | None = None) -> str:
    """Check signature and timestamp (±5 minutes, or less); return the `webhook-id`."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    if msg_id and not WEBHOOK_ID_RE.match(msg_id):
        raise InvalidSignature("webhook-id must be 1 to 200 printable ASCII characters")
    try:
        Webhook(secret).verify(content, lowered, json_parse=False)
    except WebhookVerificationError as exc:
        raise InvalidSignature(str(exc)) from exc
    except (ValueError, TypeError, UnicodeDecodeError) as exc:  # malformed header or body
        raise InvalidSignature("malformed signature headers or body") from exc
    if tolerance_seconds is not None and abs(time.time() - int(lowered["webhook-timestamp"])) > tolerance_seconds:
        raise InvalidSignature(f"webhook-timestamp is more than {tolerance_seconds:g} s off for this request")
    return msg_id
