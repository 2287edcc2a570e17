import json
import logging

from odoo import http
from odoo.http import request

from ..tools import webhooks

_logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 512 * 1024  # 40 messages of at most 4000 characters, with room


def _error(status, kind, detail):
    return request.make_json_response({"error": kind, "detail": detail}, status=status)


class HandoffController(http.Controller):
    """Handoff notices from the engine (Standard Webhooks signed): a visitor asks for a person."""

    @http.route(
        "/chatbot_platform/hooks/handoff",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def handoff(self):
        if (request.httprequest.content_length or 0) > MAX_BODY_BYTES:
            return _error(413, "payload_too_large", "Handoff notices are limited to 512 KiB.")
        body = request.httprequest.get_data(cache=False)
        if len(body) > MAX_BODY_BYTES:
            return _error(413, "payload_too_large", "Handoff notices are limited to 512 KiB.")
        try:
            secret = request.env["chatbot.outbox"]._webhook_secret()
        except ValueError:
            _logger.error("Chatbot handoff refused: WEBHOOK_SECRET is not configured")
            return _error(503, "not_configured", "Odoo has no webhook secret configured.")
        try:
            webhooks.verify(secret, request.httprequest.headers, body)
        except webhooks.WebhookVerificationError:
            return _error(401, "unauthorized", "Invalid or expired webhook signature.")
        try:
            data = json.loads(body)
            chatbot_uuid, session = str(data["chatbot"]), str(data["session"])
            if not isinstance(data.get("transcript") or [], list):
                raise TypeError("transcript")
        except (ValueError, KeyError, TypeError):
            return _error(400, "invalid_body", "Expected {chatbot, session, reason, note, transcript}.")
        # sudo: chatbot.chatbot/chatbot.handoff - the caller is the engine, authenticated by the
        # signature above, not an Odoo user; only the chatbot named by its UUID is touched
        chatbot = (
            request.env["chatbot.chatbot"]
            .sudo()
            .with_context(active_test=False)
            .search([("uuid", "=", chatbot_uuid)], limit=1)
        )
        if not chatbot:
            return _error(404, "not_found", "Unknown chatbot.")
        handoff = request.env["chatbot.handoff"].sudo()._receive(chatbot, {**data, "session": session})
        return request.make_json_response({"ok": True, "handoff": handoff.id})
