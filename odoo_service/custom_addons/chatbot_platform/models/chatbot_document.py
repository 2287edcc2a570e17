import base64
import hashlib
import os

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools import payloads

# extension -> mimetype sent to the engine; the engine extracts exactly these formats
ALLOWED_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".csv": "text/csv",
}
DEFAULT_MAX_MB = payloads.MAX_DOCUMENT_BYTES // (1024 * 1024)


class ChatbotDocument(models.Model):
    _name = "chatbot.document"
    _inherit = ["chatbot.source.mixin"]
    _description = "Chatbot document"
    _order = "id desc"

    datas = fields.Binary(string="File", attachment=True, required=True)
    filename = fields.Char(required=True)
    mimetype = fields.Char(compute="_compute_file_info", store=True)
    file_size = fields.Integer(string="Size (bytes)", compute="_compute_file_info", store=True)
    checksum = fields.Char(string="SHA-256", compute="_compute_file_info", store=True, index=True)
    qa_question = fields.Char(
        string="Q&A question", readonly=True, help="Set on a curated answer written from the unanswered questions."
    )

    _sql_constraints = [
        ("uuid_unique", "unique(uuid)", "Document UUIDs must be unique."),
    ]

    @api.depends("datas", "filename")
    def _compute_file_info(self):
        for doc in self:
            raw = doc._raw_content()
            doc.file_size = len(raw)
            doc.checksum = hashlib.sha256(raw).hexdigest() if raw else False
            doc.mimetype = ALLOWED_TYPES.get(doc._extension(), "application/octet-stream")

    @api.constrains("datas", "filename")
    def _check_file(self):
        max_mb = self._max_megabytes()
        for doc in self:
            extension = doc._extension()
            if extension not in ALLOWED_TYPES:
                raise ValidationError(
                    self.env._(
                        "%(file)s: unsupported file type. Upload PDF, DOCX, TXT, MD, HTML or CSV files.",
                        file=doc.filename,
                    )
                )
            raw = doc._raw_content()
            if not raw:
                raise ValidationError(self.env._("%(file)s is empty.", file=doc.filename))
            if len(raw) > max_mb * 1024 * 1024:
                raise ValidationError(
                    self.env._("%(file)s is larger than the %(max)s MB limit.", file=doc.filename, max=max_mb)
                )
            if extension == ".pdf" and not raw.startswith(b"%PDF-"):
                raise ValidationError(self.env._("%(file)s is not a PDF file.", file=doc.filename))
            if extension == ".docx" and not raw.startswith(b"PK\x03\x04"):
                raise ValidationError(self.env._("%(file)s is not a DOCX file.", file=doc.filename))

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if not vals.get("name") and vals.get("filename"):
                vals["name"] = vals["filename"]
        if any("datas" in vals for vals in vals_list):
            self._hold_off_filestore_gc()
        return super().create(vals_list)

    def write(self, vals):
        if "datas" in vals:
            self._hold_off_filestore_gc()
        return super().write(vals)

    def _hold_off_filestore_gc(self):
        """Keep Odoo's filestore garbage collector away until this transaction ends.

        ir.attachment writes a new file (and its GC checklist entry) before it inserts the row that
        references it; a GC run (autovacuum, `LOCK ir_attachment IN SHARE MODE`) that gets its lock
        in between deletes the file as garbage, and the document is saved without content
        (odoo/odoo#224833, not fixed in 18.0; a fresh database runs its autovacuum at once). Taking
        the lock the INSERT takes anyway, before the file is written, orders the two: the GC either
        finishes first or waits for this commit.
        """
        self.env.cr.execute("LOCK TABLE ir_attachment IN ROW EXCLUSIVE MODE")

    def _extension(self):
        return os.path.splitext(self.filename or "")[1].lower()

    def _raw_content(self):
        datas = self.with_context(bin_size=False).datas
        return base64.b64decode(datas) if datas else b""

    def _content_base64(self):
        datas = self.with_context(bin_size=False).datas
        return datas.decode() if isinstance(datas, bytes) else datas

    @api.model
    def _max_megabytes(self):
        # sudo: ir.config_parameter - an upload limit, not a secret
        value = self.env["ir.config_parameter"].sudo().get_param("chatbot_platform.max_document_mb")
        try:
            return int(value) if value else DEFAULT_MAX_MB
        except ValueError:
            return DEFAULT_MAX_MB

    def _sync_tracked_fields(self):
        return {"name", "datas", "filename"}

    def _sync_payload(self):
        self.ensure_one()
        return payloads.document_payload(
            version=self.version,
            name=self.name,
            filename=self.filename,
            mimetype=self.mimetype,
            sha256=self.checksum,
        )
