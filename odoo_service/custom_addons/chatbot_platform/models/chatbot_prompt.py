from odoo import api, fields, models

from ..tools import payloads


class ChatbotPrompt(models.Model):
    """A reusable pair of system prompt and user template; chatbots point to one."""

    _name = "chatbot.prompt"
    _description = "Chatbot prompt"
    _order = "name, id"

    name = fields.Char(required=True)
    company_id = fields.Many2one(
        "res.company",
        index=True,
        default=lambda self: self.env.company,
        help="Leave empty to share this prompt with every company.",
    )
    system_prompt = fields.Text(required=True, default=payloads.DEFAULT_SYSTEM_PROMPT)
    user_template = fields.Text(
        required=True,
        default=payloads.DEFAULT_USER_TEMPLATE,
        help="{context} is replaced by the retrieved passages and {question} by the visitor's question.",
    )
    chatbot_ids = fields.One2many("chatbot.chatbot", "prompt_id", string="Chatbots")
    chatbot_count = fields.Integer(compute="_compute_chatbot_count")

    @api.depends("chatbot_ids")
    def _compute_chatbot_count(self):
        for prompt in self:
            prompt.chatbot_count = len(prompt.chatbot_ids)

    def write(self, vals):
        res = super().write(vals)
        if {"system_prompt", "user_template"} & set(vals):
            # the prompt texts travel inside each chatbot's payload
            self.with_context(active_test=False).chatbot_ids._sync_enqueue_upsert()
        return res
