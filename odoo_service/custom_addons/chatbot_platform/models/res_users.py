from odoo import models

from .chatbot_sync_mixin import STATUS_CHANNEL


class ResUsers(models.Model):
    _inherit = "res.users"

    def _chatbot_status_channels(self):
        """Bus channels of the live chatbot/source status this user may see: one per company."""
        self.ensure_one()
        if not self.has_group("chatbot_platform.chatbot_platform_group_user"):
            return []
        return [(company, STATUS_CHANNEL) for company in self.company_ids]
