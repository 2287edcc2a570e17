import json

from odoo import fields, models


class ChatbotUnansweredGroup(models.TransientModel):
    """Questions alike in meaning that the chatbot could not answer; with the two admin actions."""

    _name = "chatbot.unanswered.group"
    _description = "Chatbot unanswered question group"
    _order = "count desc, last_asked desc, id"

    report_id = fields.Many2one("chatbot.unanswered.report", required=True, ondelete="cascade")
    chatbot_id = fields.Many2one(related="report_id.chatbot_id")
    question = fields.Char(readonly=True)
    count = fields.Integer(string="Asked", readonly=True)
    last_asked = fields.Datetime(readonly=True)
    variant_count = fields.Integer(string="Wordings", readonly=True)
    variants = fields.Text(string="Asked as", readonly=True)
    questions_json = fields.Text(readonly=True)

    def _questions(self):
        self.ensure_one()
        try:
            questions = [q for q in json.loads(self.questions_json or "[]") if isinstance(q, str) and q]
        except ValueError:
            questions = []
        return questions or [self.question]

    def action_mark_handled(self):
        """Hide these questions from the report until they are asked, unanswered, again.

        A signed POST on the user's click (like Test chat, not an outbox delivery): it changes
        nothing in Odoo, and repeating it is harmless.
        """
        for group in self:
            group.chatbot_id._mark_questions_handled(group._questions())
        report = self.report_id
        self.unlink()
        return report._reopen() if len(report) == 1 else True

    def action_create_qa(self):
        self.ensure_one()
        self.chatbot_id.check_access("write")
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Answer: %(question)s", question=self.question),
            "res_model": "chatbot.qa.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {
                "default_chatbot_id": self.chatbot_id.id,
                "default_question": self.question,
                "default_variants": "\n".join(self._questions()),
                "default_group_id": self.id,
            },
        }
