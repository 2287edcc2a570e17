from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools import engine_client, payloads

PAGE_SIZE = 50  # sessions per page; the engine allows up to 200
DEFAULT_DAYS = 30
RATINGS = [("up", "Thumbs up"), ("down", "Thumbs down"), ("none", "No feedback")]


class ChatbotConversationBrowser(models.TransientModel):
    """One page of a chatbot's conversations, read from the engine on demand.

    Conversations stay in the engine: this screen holds only the page on display (transient
    records, per user, swept by Odoo's vacuum); filters and paging ask the engine again.
    """

    _name = "chatbot.conversation.browser"
    _description = "Chatbot conversations"

    chatbot_id = fields.Many2one("chatbot.chatbot", required=True, ondelete="cascade")
    date_from = fields.Date(string="From", default=lambda self: fields.Date.today() - timedelta(days=DEFAULT_DAYS))
    date_to = fields.Date(string="To", default=fields.Date.today)
    rating = fields.Selection(RATINGS, string="Feedback")
    unanswered = fields.Selection([("yes", "With unanswered turns"), ("no", "All answered")], string="Answers")
    offset = fields.Integer(readonly=True)
    total = fields.Integer(readonly=True)
    page_label = fields.Char(compute="_compute_page_label")
    line_ids = fields.One2many("chatbot.conversation", "browser_id", string="Conversations", readonly=True)

    @api.depends("offset", "total", "line_ids")
    def _compute_page_label(self):
        for browser in self:
            if not browser.total:
                browser.page_label = self.env._("No conversation matches")
            else:
                browser.page_label = self.env._(
                    "%(first)s-%(last)s of %(total)s",
                    first=browser.offset + 1,
                    last=browser.offset + len(browser.line_ids),
                    total=browser.total,
                )

    # -- actions --------------------------------------------------------------------------------
    def action_search(self):
        self.ensure_one()
        self.offset = 0
        return self._load()

    def action_next(self):
        self.ensure_one()
        if self.offset + PAGE_SIZE < self.total:
            self.offset += PAGE_SIZE
        return self._load()

    def action_previous(self):
        self.ensure_one()
        self.offset = max(0, self.offset - PAGE_SIZE)
        return self._load()

    # -- business methods -----------------------------------------------------------------------
    def _query(self):
        query = {"limit": PAGE_SIZE, "offset": self.offset}
        if self.date_from:
            query["since"] = fields.Date.to_string(self.date_from)
        if self.date_to:
            query["until"] = fields.Date.to_string(self.date_to + timedelta(days=1))  # the engine's is exclusive
        if self.rating:
            query["rating"] = self.rating
        if self.unanswered:
            query["unanswered"] = "true" if self.unanswered == "yes" else "false"
        return query

    def _load(self):
        """Replace the page with what the engine has now; returns the action showing it."""
        self.ensure_one()
        bot = self.chatbot_id
        bot.check_access("read")  # record rules: another company's chatbot is refused here
        if self.date_from and self.date_to and self.date_to < self.date_from:
            raise UserError(self.env._("The end date is before the start date."))
        client = bot._client_or_raise()
        try:
            page = client.get_json("/internal/v1/chatbots/%s/sessions" % bot.uuid, self._query())
        except engine_client.EngineError as exc:
            raise UserError(
                self.env._("Could not load the conversations of %(name)s: %(reason)s", name=bot.name, reason=str(exc))
            ) from exc
        page = page or {"total": 0, "sessions": []}
        lines = [
            {
                "session_uuid": str(s["session_id"]),
                "started_at": payloads.parse_utc(s.get("created_at")),
                "last_active_at": payloads.parse_utc(s.get("last_active_at")),
                "turns": int(s.get("turns") or 0),
                "first_question": (s.get("first_question") or "")[:500],
                "thumbs_up": int(s.get("thumbs_up") or 0),
                "thumbs_down": int(s.get("thumbs_down") or 0),
                "unanswered_count": int(s.get("unanswered") or 0),
                "generators": ", ".join(s.get("generators") or []),
                "handoff_at": payloads.parse_utc(s.get("handoff_at")),
            }
            for s in page.get("sessions") or []
        ]
        self.write({"total": int(page.get("total") or 0), "line_ids": [(5, 0, 0)] + [(0, 0, v) for v in lines]})
        return self._reopen()

    def _reopen(self):
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Conversations: %(name)s", name=self.chatbot_id.name),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "current",
        }
