import json

from odoo import http
from odoo.http import request

from .signed_hook import error, signed_body

MAX_BODY_BYTES = 512 * 1024  # 40 messages of at most 4000 characters, with room


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
        body, refused = signed_body(MAX_BODY_BYTES, "Handoff notices")
        if refused:
            return refused
        try:
            data = json.loads(body)
            chatbot_uuid, session = str(data["chatbot"]), str(data["session"])
            if not isinstance(data.get("transcript") or [], list):
                raise TypeError("transcript")
        except (ValueError, KeyError, TypeError):
            return error(400, "invalid_body", "Expected {chatbot, session, reason, note, transcript}.")
        # sudo: chatbot.chatbot/chatbot.handoff - the caller is the engine, authenticated by the
        # signature above, not an Odoo user; only the chatbot named by its UUID is touched
        chatbot = (
            request.env["chatbot.chatbot"]
            .sudo()
            .with_context(active_test=False)
            .search([("uuid", "=", chatbot_uuid)], limit=1)
        )
        if not chatbot:
            return error(404, "not_found", "Unknown chatbot.")
        handoff = request.env["chatbot.handoff"].sudo()._receive(chatbot, {**data, "session": session})
        return request.make_json_response({"ok": True, "handoff": handoff.id})
