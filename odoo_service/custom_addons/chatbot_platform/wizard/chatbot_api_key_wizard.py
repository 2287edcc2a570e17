from odoo import fields, models


class ChatbotApiKeyWizard(models.TransientModel):
    _name = "chatbot.api.key.wizard"
    _description = "Generate a chatbot API key"

    chatbot_id = fields.Many2one("chatbot.chatbot", required=True, ondelete="cascade")
    name = fields.Char(required=True, default="Website widget")
    kind = fields.Selection(
        [("publishable", "Publishable (widget)"), ("secret", "Secret (server-to-server)")],
        required=True,
        default="publishable",
    )
    expires_at = fields.Datetime(string="Expires", help="Leave empty for a key that does not expire.")

    def action_generate(self):
        self.ensure_one()
        key, plain = self.env["chatbot.api.key"]._generate(self.chatbot_id, self.kind, self.name, self.expires_at)
        return key._reveal_action(plain)
