from markupsafe import Markup
from odoo import fields, models


class ChatbotDocumentUploadWizard(models.TransientModel):
    """Many files at once onto a chatbot, chosen with the multi-file picker; the rule (one
    transaction, the file limit, duplicates by SHA-256) is ``chatbot.document._create_from_uploads``,
    which files dropped on the documents list or kanban go through too."""

    _name = "chatbot.document.upload.wizard"
    _description = "Chatbot bulk document upload"

    chatbot_id = fields.Many2one("chatbot.chatbot", required=True, ondelete="cascade")
    attachment_ids = fields.Many2many("ir.attachment", string="Files")
    result_html = fields.Html(string="Result", readonly=True, sanitize=True)
    document_ids = fields.Many2many("chatbot.document", string="Created documents", readonly=True)
    state = fields.Selection([("draft", "Draft"), ("done", "Done")], default="draft")

    def action_upload(self):
        self.ensure_one()
        Document = self.env["chatbot.document"]
        # in the order the files were added
        documents, duplicates = Document._create_from_uploads(self.chatbot_id, self.attachment_ids.sorted("id"))
        rows = Markup("").join(
            Markup("<li>%s</li>") % Document._bulk_upload_duplicate_note(file, doc) for file, doc in duplicates
        )
        self.write(
            {
                "state": "done",
                "document_ids": [(6, 0, documents.ids)],
                "result_html": Markup("<p>%s</p>%s")
                % (
                    Document._bulk_upload_summary(len(documents), duplicates),
                    Markup("<ul class='o_chatbot_duplicates'>%s</ul>") % rows if rows else "",
                ),
            }
        )
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Upload documents"),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
        }
