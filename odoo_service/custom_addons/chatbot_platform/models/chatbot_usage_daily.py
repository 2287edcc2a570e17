from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools import engine_client

DEFAULT_DAYS = 90
GENERATORS = ("extractive", "ollama", "openai")


class ChatbotUsageDaily(models.Model):
    """Daily usage per chatbot, pulled from the engine for the graph and pivot views.

    Odoo's graph and pivot views need stored records, so this is a cache of aggregates (one row
    per chatbot and UTC day), refilled on demand for the chatbots the user can read: never a copy
    of conversations. Refreshing replaces the rows of those chatbots in the window.
    """

    _name = "chatbot.usage.daily"
    _description = "Chatbot daily usage"
    _order = "day desc, chatbot_id"

    chatbot_id = fields.Many2one("chatbot.chatbot", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="chatbot_id.company_id", store=True, index=True)
    day = fields.Date(required=True, index=True)
    questions = fields.Integer(aggregator="sum")
    sessions = fields.Integer(aggregator="sum")
    unanswered = fields.Integer(aggregator="sum")
    thumbs_up = fields.Integer(string="Thumbs up", aggregator="sum")
    thumbs_down = fields.Integer(string="Thumbs down", aggregator="sum")
    unanswered_rate = fields.Float(string="Unanswered rate (%)", aggregator="avg", digits=(5, 1))
    p50_latency_ms = fields.Integer(string="p50 answer latency (ms)", aggregator="avg")
    extractive_answers = fields.Integer(string="Extractive answers", aggregator="sum")
    ollama_answers = fields.Integer(string="Ollama answers", aggregator="sum")
    openai_answers = fields.Integer(string="OpenAI answers", aggregator="sum")

    _sql_constraints = [
        ("chatbot_day_unique", "unique(chatbot_id, day)", "One usage row per chatbot and day."),
    ]

    @api.model
    def action_refresh_and_open(self):
        """Refresh the user's chatbots (their companies, record rules applied), then show the graph."""
        chatbots = self.env["chatbot.chatbot"].search([])
        self._refresh(chatbots)
        return self.env["ir.actions.act_window"]._for_xml_id("chatbot_platform.chatbot_usage_daily_action")

    @api.model
    def _refresh(self, chatbots, days=DEFAULT_DAYS):
        if not chatbots:
            return self.browse()
        client = chatbots[:1]._client_or_raise()
        since = fields.Date.today() - timedelta(days=days)
        query = {"since": fields.Date.to_string(since)}
        rows = []
        for bot in chatbots:
            try:
                data = client.get_json("/internal/v1/chatbots/%s/daily" % bot.uuid, query)
            except engine_client.EngineError as exc:
                raise UserError(
                    self.env._("Could not load the usage of %(name)s: %(reason)s", name=bot.name, reason=str(exc))
                ) from exc
            for day in (data or {}).get("days") or []:
                questions = int(day.get("questions") or 0)
                unanswered = int(day.get("unanswered") or 0)
                mix = day.get("generators") or {}
                rows.append(
                    {
                        "chatbot_id": bot.id,
                        "day": day.get("day"),
                        "questions": questions,
                        "sessions": int(day.get("sessions") or 0),
                        "unanswered": unanswered,
                        "thumbs_up": int(day.get("thumbs_up") or 0),
                        "thumbs_down": int(day.get("thumbs_down") or 0),
                        "unanswered_rate": 100.0 * unanswered / questions if questions else 0.0,
                        "p50_latency_ms": int(day.get("p50_latency_ms") or 0),
                        **{"%s_answers" % g: int(mix.get(g) or 0) for g in GENERATORS},
                    }
                )
        # sudo: chatbot.usage.daily - replacing the cache rows of chatbots the user just read
        cache = self.sudo()
        cache.search([("chatbot_id", "in", chatbots.ids), ("day", ">=", since)]).unlink()
        return cache.create(rows)
