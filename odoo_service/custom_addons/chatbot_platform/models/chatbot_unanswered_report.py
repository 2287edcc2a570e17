import json
from datetime import timedelta

from odoo import fields, models
from odoo.exceptions import UserError

from ..tools import engine_client, payloads

DEFAULT_DAYS = 30


class ChatbotUnansweredReport(models.TransientModel):
    """The engine's unanswered questions of one chatbot, grouped by meaning, read on demand."""

    _name = "chatbot.unanswered.report"
    _description = "Chatbot unanswered questions"

    chatbot_id = fields.Many2one("chatbot.chatbot", required=True, ondelete="cascade")
    date_from = fields.Date(string="Since", default=lambda self: fields.Date.today() - timedelta(days=DEFAULT_DAYS))
    group_ids = fields.One2many("chatbot.unanswered.group", "report_id", string="Questions", readonly=True)

    def action_load(self):
        self.ensure_one()
        bot = self.chatbot_id
        bot.check_access("read")
        client = bot._client_or_raise()
        query = {"since": fields.Date.to_string(self.date_from)} if self.date_from else {}
        try:
            data = client.get_json("/internal/v1/chatbots/%s/unanswered" % bot.uuid, query)
        except engine_client.EngineError as exc:
            raise UserError(
                self.env._(
                    "Could not load the unanswered questions of %(name)s: %(reason)s", name=bot.name, reason=str(exc)
                )
            ) from exc
        groups = [
            {
                "question": g.get("question") or "",
                "count": int(g.get("count") or 0),
                "last_asked": payloads.parse_utc(g.get("last_asked")),
                "variants": "\n".join(q.get("question") or "" for q in g.get("questions") or []),
                "variant_count": len(g.get("questions") or []),
                "questions_json": json.dumps([q.get("question") for q in g.get("questions") or []]),
            }
            for g in (data or {}).get("groups") or []
        ]
        self.write({"group_ids": [(5, 0, 0)] + [(0, 0, v) for v in groups]})
        return self._reopen()

    def _reopen(self):
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Unanswered questions: %(name)s", name=self.chatbot_id.name),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "current",
        }
