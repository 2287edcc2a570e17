from odoo import api, fields, models

NEVER_STORED = ("plain_key", "embed_snippet")


class ChatbotApiKeyReveal(models.TransientModel):
    """Shows a freshly generated key once. The key arrives through the action context and is
    only ever rendered in the browser: ``create`` drops it, so it never reaches the database."""

    _name = "chatbot.api.key.reveal"
    _description = "Show a new chatbot API key once"

    api_key_id = fields.Many2one("chatbot.api.key", string="API key", readonly=True, ondelete="cascade")
    prefix = fields.Char(related="api_key_id.prefix")
    kind = fields.Selection(related="api_key_id.kind")
    plain_key = fields.Char(string="Key", readonly=True)
    embed_snippet = fields.Char(readonly=True)

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            for name in NEVER_STORED:
                vals[name] = False  # explicit: a context default must not be stored either
        return super().create(vals_list)

    def write(self, vals):
        vals = {name: value for name, value in vals.items() if name not in NEVER_STORED}
        return super().write(vals)
