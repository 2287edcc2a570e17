from odoo import api, fields, models


class ChatbotConversation(models.TransientModel):
    """One conversation (engine session) on the page of a ``chatbot.conversation.browser``."""

    _name = "chatbot.conversation"
    _description = "Chatbot conversation"
    _order = "last_active_at desc, id"

    browser_id = fields.Many2one("chatbot.conversation.browser", required=True, ondelete="cascade")
    chatbot_id = fields.Many2one(related="browser_id.chatbot_id")
    session_uuid = fields.Char(string="Session", readonly=True)
    started_at = fields.Datetime(readonly=True)
    last_active_at = fields.Datetime(string="Last active", readonly=True)
    turns = fields.Integer(readonly=True)
    first_question = fields.Char(readonly=True)
    thumbs_up = fields.Integer(string="👍", readonly=True)
    thumbs_down = fields.Integer(string="👎", readonly=True)
    unanswered_count = fields.Integer(string="Unanswered", readonly=True)
    has_unanswered = fields.Boolean(compute="_compute_has_unanswered")
    generators = fields.Char(string="Generator", readonly=True)
    handoff_at = fields.Datetime(string="Handed off", readonly=True)

    @api.depends("unanswered_count")
    def _compute_has_unanswered(self):
        for line in self:
            line.has_unanswered = line.unanswered_count > 0

    def action_open_transcript(self):
        self.ensure_one()
        return self.env["chatbot.conversation.transcript"]._open(self.chatbot_id, self.session_uuid)
