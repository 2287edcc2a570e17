import base64
import hashlib

from markupsafe import Markup
from odoo import fields, models
from odoo.exceptions import UserError

MAX_FILES = 200  # one upload; more files: upload again


class ChatbotDocumentUploadWizard(models.TransientModel):
    """Many files at once onto a chatbot: each becomes a document, except a file whose SHA-256
    the chatbot already has (or that appears twice in the upload): flagged, not ingested again."""

    _name = "chatbot.document.upload.wizard"
    _description = "Chatbot bulk document upload"

    chatbot_id = fields.Many2one("chatbot.chatbot", required=True, ondelete="cascade")
    attachment_ids = fields.Many2many("ir.attachment", string="Files")
    result_html = fields.Html(string="Result", readonly=True, sanitize=True)
    document_ids = fields.Many2many("chatbot.document", string="Created documents", readonly=True)
    state = fields.Selection([("draft", "Draft"), ("done", "Done")], default="draft")

    def action_upload(self):
        self.ensure_one()
        self.chatbot_id.check_access("write")
        files = self.attachment_ids
        if not files:
            raise UserError(self.env._("Choose the files to upload first."))
        if len(files) > MAX_FILES:
            raise UserError(self.env._("At most %(max)s files per upload.", max=MAX_FILES))
        known = {
            d.checksum: d
            for d in self.env["chatbot.document"].search([("chatbot_id", "=", self.chatbot_id.id)])
            if d.checksum
        }
        to_create, duplicates = [], []
        for attachment in files:
            raw = attachment.raw or b""
            digest = hashlib.sha256(raw).hexdigest()
            if digest in known:
                duplicates.append((attachment.name, known[digest].name))
                continue
            known[digest] = attachment  # a second copy in the same upload is a duplicate too
            to_create.append(
                {"chatbot_id": self.chatbot_id.id, "filename": attachment.name, "datas": base64.b64encode(raw)}
            )
        documents = self.env["chatbot.document"].create(to_create)  # one transaction: all or nothing
        files.unlink()  # the documents keep their own copy; the upload's temporary files go
        rows = Markup("").join(
            Markup("<li>%s</li>") % self.env._("%(file)s: same content as %(doc)s, not uploaded again", file=f, doc=d)
            for f, d in duplicates
        )
        self.write(
            {
                "state": "done",
                "document_ids": [(6, 0, documents.ids)],
                "result_html": Markup("<p>%s</p>%s")
                % (
                    self.env._(
                        "%(created)s documents created, %(dupes)s duplicates skipped.",
                        created=len(documents),
                        dupes=len(duplicates),
                    ),
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
