import base64
import hashlib
import os

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

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
MAX_UPLOAD_FILES = 200  # one bulk upload (the wizard or a drop); more files: upload again


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

    # -- bulk upload (the upload wizard and files dropped on the documents list/kanban) ----------
    @api.model
    def check_bulk_upload(self, chatbot_id, file_count):
        """Called by a drop before its files are sent: refuses at once what the upload itself
        would refuse (no right to add documents to this chatbot, too many files)."""
        self._bulk_upload_check(self.env["chatbot.chatbot"].browse(chatbot_id), file_count)
        return True

    @api.model
    def upload_dropped_files(self, chatbot_id, attachment_ids):
        """Files dropped on the documents list or kanban, staged by the browser as attachments of
        the chatbot (static/src/js/document_drop.js), become its documents. Only attachments this
        user staged on this chatbot are accepted. Returns what the notification shows."""
        chatbot = self.env["chatbot.chatbot"].browse(chatbot_id)
        ids = list(dict.fromkeys(attachment_ids))
        self._bulk_upload_check(chatbot, len(ids))
        staged = self.env["ir.attachment"].search(
            [
                ("id", "in", ids),
                ("res_model", "=", "chatbot.chatbot"),
                ("res_id", "=", chatbot.id),
                ("res_field", "=", False),
                ("create_uid", "=", self.env.uid),
            ]
        )
        if len(staged) != len(ids):
            raise UserError(self.env._("Some of the dropped files were not received; drop them again."))
        documents, duplicates = self._create_from_uploads(chatbot, self.env["ir.attachment"].browse(ids))
        return {
            "document_ids": documents.ids,
            "duplicates": [{"file": file, "document": doc} for file, doc in duplicates],
            "message": " ".join(
                [self._bulk_upload_summary(len(documents), duplicates)]
                + ["%s." % self._bulk_upload_duplicate_note(file, doc) for file, doc in duplicates]
            ),
        }

    @api.model
    def _create_from_uploads(self, chatbot, attachments):
        """The rule of every bulk upload: each file (an ``ir.attachment``, in the order given)
        becomes a document of ``chatbot``, in this one transaction (a refused file refuses the
        upload), except a file whose SHA-256 the chatbot already has, or an earlier file of the
        same upload has: a duplicate, not ingested again. The attachments, temporary copies, are
        deleted. Returns (documents, [(file name, name of the document or file it repeats)])."""
        self._bulk_upload_check(chatbot, len(attachments))
        contents = [(attachment.name, attachment.raw or b"") for attachment in attachments]
        digests = [hashlib.sha256(raw).hexdigest() for _name, raw in contents]
        known = {
            doc.checksum: doc.name
            for doc in self.search([("chatbot_id", "=", chatbot.id), ("checksum", "in", digests)])
        }
        to_create, duplicates = [], []
        for (name, raw), digest in zip(contents, digests):
            if digest in known:
                duplicates.append((name, known[digest]))
                continue
            known[digest] = name  # a second copy in the same upload is a duplicate too
            to_create.append({"chatbot_id": chatbot.id, "filename": name, "datas": base64.b64encode(raw)})
        documents = self.create(to_create)
        attachments.unlink()
        return documents, duplicates

    @api.model
    def _bulk_upload_check(self, chatbot, file_count):
        if len(chatbot) != 1 or not chatbot.exists():
            raise UserError(self.env._("Choose the chatbot the files are for."))
        chatbot.check_access("write")
        if not file_count:
            raise UserError(self.env._("Choose the files to upload first."))
        if file_count > MAX_UPLOAD_FILES:
            raise UserError(
                self.env._(
                    "At most %(max)s files per upload (%(count)s given); upload the rest in another go.",
                    max=MAX_UPLOAD_FILES,
                    count=file_count,
                )
            )

    @api.model
    def _bulk_upload_summary(self, created, duplicates):
        return self.env._(
            "%(created)s documents created, %(dupes)s duplicates skipped.", created=created, dupes=len(duplicates)
        )

    @api.model
    def _bulk_upload_duplicate_note(self, file, doc):
        return self.env._("%(file)s: same content as %(doc)s, not uploaded again", file=file, doc=doc)

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
