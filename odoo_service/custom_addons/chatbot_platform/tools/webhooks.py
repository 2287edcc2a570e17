"""Standard Webhooks v1 signing and verification, used in both directions.

Headers: ``webhook-id``, ``webhook-timestamp`` (unix seconds) and
``webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`` where ``key`` is
the base64-decoded part of a ``whsec_…`` secret. Several space-separated signatures are
accepted so that a secret can be rotated without downtime.

Requests to the engine's internal API sign a request envelope instead of the bare body:
``"{METHOD} {path[?query]}\n" + body`` (``request_envelope``), so signed headers are valid for that
one method and path (and the chatbot/source ids in it) only. The HMAC scheme is unchanged. The
engine's status callbacks to Odoo go to one fixed route and sign the body alone.
"""

import base64
import binascii
import hashlib
import hmac
import time
import uuid

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
TOLERANCE_SECONDS = 300


class WebhookVerificationError(Exception):
    """The request is not signed by the holder of the shared secret (or is too old)."""


def secret_bytes(secret):
    """Decode a ``whsec_<base64>`` secret into the HMAC key; ValueError when malformed."""
    if not secret or not secret.startswith(SECRET_PREFIX):
        raise ValueError("webhook secret must start with 'whsec_'")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("webhook secret is not valid base64") from exc
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError("webhook secret must hold at least 24 bytes")
    return key


def new_message_id():
    return "msg_" + uuid.uuid4().hex


def request_envelope(method, target, body):
    """What an internal API request signs: method, path as sent (plus ``?query``) and body."""
    return ("%s %s\n" % (method.upper(), target)).encode() + body


def sign(secret, msg_id, timestamp, body):
    """Return the ``v1,<base64>`` signature of ``body`` (bytes)."""
    signed = b"%s.%d." % (msg_id.encode(), int(timestamp)) + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret, msg_id, body, timestamp=None):
    timestamp = int(time.time() if timestamp is None else timestamp)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def _header(headers, name):
    value = headers.get(name)
    if value is None:
        # plain dicts are case-sensitive; werkzeug's Headers are not
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate
    return value


def verify(secret, headers, body, now=None, tolerance=TOLERANCE_SECONDS):
    """Check a signed request; return its ``webhook-id`` or raise WebhookVerificationError."""
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not (msg_id and timestamp and signatures):
        raise WebhookVerificationError("missing webhook headers")
    try:
        timestamp = int(timestamp)
    except ValueError as exc:
        raise WebhookVerificationError("invalid webhook-timestamp") from exc
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp outside the tolerance window")
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1].encode()
    for candidate in signatures.split(" "):
        version, _sep, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return msg_id
    raise WebhookVerificationError("no matching signature")
