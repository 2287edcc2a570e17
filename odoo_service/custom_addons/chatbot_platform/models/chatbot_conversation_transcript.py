from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools import engine_client, payloads, reports


class ChatbotConversationTranscript(models.TransientModel):
    """One conversation's messages, each answer with its sources and feedback, read on demand."""

    _name = "chatbot.conversation.transcript"
    _description = "Chatbot conversation transcript"

    chatbot_id = fields.Many2one("chatbot.chatbot", required=True, ondelete="cascade", readonly=True)
    session_uuid = fields.Char(string="Session", readonly=True)
    started_at = fields.Datetime(readonly=True)
    handoff_at = fields.Datetime(string="Handed off", readonly=True)
    handoff_reason = fields.Char(readonly=True)
    transcript_html = fields.Html(string="Transcript", readonly=True, sanitize=False)

    @api.model
    def _open(self, chatbot, session_uuid):
        chatbot.check_access("read")
        client = chatbot._client_or_raise()
        try:
            data = client.get_json("/internal/v1/chatbots/%s/sessions/%s" % (chatbot.uuid, session_uuid))
        except engine_client.EngineError as exc:
            raise UserError(self.env._("Could not load the conversation: %(reason)s", reason=str(exc))) from exc
        if data is None:
            raise UserError(self.env._("The engine has no such conversation (any more)."))
        labels = {
            "visitor": self.env._("Visitor:"),
            "bot": self.env._("Bot:"),
            "sources": self.env._("Sources"),
            "unanswered": self.env._("Unanswered"),
        }
        transcript = self.create(
            {
                "chatbot_id": chatbot.id,
                "session_uuid": session_uuid,
                "started_at": payloads.parse_utc(data.get("created_at")),
                "handoff_at": payloads.parse_utc(data.get("handoff_at")),
                "handoff_reason": data.get("handoff_reason") or False,
                # escaped piece by piece by reports.transcript_html: safe to store unsanitized
                "transcript_html": reports.transcript_html(data.get("messages") or [], labels),
            }
        )
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Conversation"),
            "res_model": self._name,
            "res_id": transcript.id,
            "view_mode": "form",
            "target": "new",
        }
