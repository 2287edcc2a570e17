"""Signed HTTP client for the engine's internal API, and how its answers are classified.

The classification is the contract's status table (contract/status_codes.json, docs/contract.md;
the addon's and the engine's tests load it):

- 2xx means delivered, unless the body says the engine ignored it as superseded
  (``{"applied": false, "reason": "stale_version" | "chatbot_deleted"}``): the engine already
  holds a newer state, so this one is dropped, never retried;
- 408, 429, 5xx, timeouts and connection errors are transient: retry later;
- any other 4xx (409 included: the source id belongs to another chatbot) is a permanent refusal:
  retrying the same request cannot succeed, and the record shows the engine's reason.
"""

import json
from dataclasses import dataclass

import requests

from . import webhooks

DELIVERED = "delivered"
SUPERSEDED = "superseded"
RETRY = "retry"
PERMANENT = "permanent"
# `reason` of a 2xx `{"applied": false}` answer that means "the engine holds something newer"
SUPERSEDED_REASONS = ("stale_version", "chatbot_deleted")

# one number, not a (connect, read) tuple: Odoo's test harness only understands scalars
DELIVERY_TIMEOUT = 20
CHAT_TIMEOUT = 90
MAX_DETAIL_CHARS = 500


class EngineError(Exception):
    """A read from the engine failed; ``status`` is None for network errors."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


@dataclass
class DeliveryResult:
    outcome: str
    status: int | None
    detail: str
    retry_after: int | None = None
    body: object = None


def classify(status, body=None):
    """The outcome of an engine answer with HTTP ``status`` and parsed JSON ``body``."""
    if 200 <= status < 300:
        superseded = isinstance(body, dict) and body.get("applied") is False
        if superseded and body.get("reason") in SUPERSEDED_REASONS:
            return SUPERSEDED
        return DELIVERED
    if status in (408, 429) or status >= 500:
        return RETRY
    return PERMANENT


def _detail(response):
    """A short human sentence from an engine error body ``{"error", "detail"}``."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "")[:MAX_DETAIL_CHARS]
    if isinstance(body, dict):
        text = " - ".join(str(body[k]) for k in ("error", "detail") if body.get(k))
        return text[:MAX_DETAIL_CHARS]
    return str(body)[:MAX_DETAIL_CHARS]


def _retry_after(response):
    try:
        return max(0, int(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


class EngineClient:
    def __init__(self, base_url, secret, timeout=DELIVERY_TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.timeout = timeout

    def _send(self, method, path, body, msg_id, params=None):
        """Sign method + path as they go on the wire (query included) + body, then send."""
        prepared = requests.Request(method, self.base_url + path, data=body, params=params).prepare()
        envelope = webhooks.request_envelope(prepared.method, prepared.path_url, body)
        prepared.headers.update(webhooks.signed_headers(self.secret, msg_id or webhooks.new_message_id(), envelope))
        if body:
            prepared.headers["Content-Type"] = "application/json"
        with requests.Session() as session:
            return session.send(prepared, timeout=self.timeout)

    def deliver(self, method, path, payload, msg_id):
        """Send one outbox row; never raises for HTTP or network problems."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        try:
            response = self._send(method, path, body, msg_id)
        except requests.Timeout:
            return DeliveryResult(RETRY, None, "engine did not answer in time")
        except requests.ConnectionError:
            return DeliveryResult(RETRY, None, "engine unreachable at %s" % self.base_url)
        except requests.RequestException as exc:
            return DeliveryResult(RETRY, None, "request failed: %s" % type(exc).__name__)
        try:
            parsed = response.json() if response.content else None
        except ValueError:
            parsed = None
        outcome = classify(response.status_code, parsed)
        detail = "" if outcome == DELIVERED else _detail(response)
        return DeliveryResult(outcome, response.status_code, detail, _retry_after(response), parsed)

    def get_json(self, path, params=None):
        """GET a JSON document; EngineError on any failure. Returns None on 404."""
        try:
            response = self._send("GET", path, b"", None, params=params)
        except requests.RequestException as exc:
            raise EngineError("engine unreachable at %s (%s)" % (self.base_url, type(exc).__name__)) from exc
        if response.status_code == 404:
            return None
        if not 200 <= response.status_code < 300:
            raise EngineError(_detail(response) or "HTTP %d" % response.status_code, response.status_code)
        try:
            return response.json()
        except ValueError as exc:
            raise EngineError("engine answered with invalid JSON") from exc

    def post_json(self, path, payload):
        """A signed POST the user asked for and waits on (not an outbox delivery); EngineError on
        any failure, the engine's JSON answer otherwise."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        try:
            response = self._send("POST", path, body, None)
        except requests.RequestException as exc:
            raise EngineError("engine unreachable at %s (%s)" % (self.base_url, type(exc).__name__)) from exc
        if not 200 <= response.status_code < 300:
            raise EngineError(_detail(response) or "HTTP %d" % response.status_code, response.status_code)
        try:
            return response.json()
        except ValueError as exc:
            raise EngineError("engine answered with invalid JSON") from exc

    def chat(self, api_key, message, session_id=None, timeout=CHAT_TIMEOUT):
        """Public API call used by Test chat; returns (status, body)."""
        body = {"message": message}
        if session_id:
            body["session_id"] = session_id
        try:
            response = requests.post(
                self.base_url + "/v1/chat",
                json=body,
                timeout=timeout,
                headers={"Authorization": "Bearer " + api_key},
            )
        except requests.RequestException as exc:
            raise EngineError("engine unreachable at %s (%s)" % (self.base_url, type(exc).__name__)) from exc
        try:
            parsed = response.json()
        except ValueError:
            parsed = {}
        if not 200 <= response.status_code < 300:
            raise EngineError(_detail(response) or "HTTP %d" % response.status_code, response.status_code)
        return parsed
