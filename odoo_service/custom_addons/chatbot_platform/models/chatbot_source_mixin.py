from odoo import api, fields, models
from odoo.exceptions import UserError

from .chatbot_sync_mixin import SKIP_SYNC

SOURCE_STATES = [
    ("queued", "Queued"),
    ("processing", "Processing"),
    ("ready", "Ready"),
    ("failed", "Failed"),
]


class ChatbotSourceMixin(models.AbstractModel):
    """What documents and links share: the chatbot they feed and their ingestion status."""

    _name = "chatbot.source.mixin"
    _inherit = ["chatbot.sync.mixin"]
    _description = "Chatbot knowledge source"
    _check_company_auto = True

    # optional in forms: create() fills it from the file name or URL
    name = fields.Char(help="Defaults to the file name or the URL.")
    # The company follows the chatbot, so the choice is any chatbot of the user's allowed companies
    # (check_company would filter on the new record's still-empty company and offer none).
    chatbot_id = fields.Many2one(
        "chatbot.chatbot",
        required=True,
        ondelete="cascade",
        index=True,
        domain="[('company_id', 'in', allowed_company_ids)]",
    )
    company_id = fields.Many2one(related="chatbot_id.company_id", store=True, index=True)
    state = fields.Selection(SOURCE_STATES, default="queued", required=True, readonly=True, copy=False)
    chunk_count = fields.Integer(string="Chunks", readonly=True, copy=False)
    error = fields.Text(string="Ingestion error", readonly=True, copy=False)
    indexed_at = fields.Datetime(string="Last indexed", readonly=True, copy=False)
    # while processing: chunks embedded so far / in all, as the engine last reported them
    progress_done = fields.Integer(string="Chunks embedded", readonly=True, copy=False)
    progress_total = fields.Integer(string="Chunks to embed", readonly=True, copy=False)
    processing_started_at = fields.Datetime(readonly=True, copy=False)
    # The `seq` of the last engine status applied (the engine's status outbox id, a bigint: a Float
    # holds it exactly up to 2**53, an Integer column only to 2**31).
    engine_status_seq = fields.Float(digits=(20, 0), readonly=True, copy=False, default=0)
    progress_display = fields.Char(string="Progress", compute="_compute_progress_display")

    @api.depends("state", "progress_done", "progress_total", "processing_started_at")
    def _compute_progress_display(self):
        now = fields.Datetime.now()
        for record in self:
            done, total = record.progress_done, record.progress_total
            if record.state != "processing" or total <= 0:
                record.progress_display = False
                continue
            text = self.env._("%(done)s / %(total)s chunks embedded", done=done, total=total)
            if 0 < done < total and record.processing_started_at:
                # a straight-line estimate from the pace so far
                elapsed = (now - record.processing_started_at).total_seconds()
                left = max(0, round(elapsed * (total - done) / done))
                text += self.env._(", about %(eta)s left", eta=_duration(left))
            record.progress_display = text

    def _sync_chatbot(self):
        return self.chatbot_id

    def _sync_path(self):
        self.ensure_one()
        return "/internal/v1/chatbots/%s/sources/%s" % (self.chatbot_id.uuid, self.uuid)

    def write(self, vals):
        if "chatbot_id" in vals and any(rec.chatbot_id.id != vals["chatbot_id"] for rec in self):
            raise UserError(self.env._("A source cannot be moved to another chatbot; create it there instead."))
        return super().write(vals)

    def _sync_enqueue_upsert(self):
        super()._sync_enqueue_upsert()
        # the engine re-ingests every new version; what Odoo shows waits for its callback
        self.with_context(**{SKIP_SYNC: True}).write({"state": "queued", "error": False})
        self._bus_notify_status()

    def _sync_mark(self, state, error=False):
        if state == "failed":
            # refused by the engine (or superseded there): it will never be queued or indexed;
            # the reason is the sync error
            self.with_context(**{SKIP_SYNC: True}).write({"state": "failed", "error": False})
        super()._sync_mark(state, error)

    @api.model
    def _find_by_uuid(self, source_uuid):
        """The document or link with this UUID, in the caller's access rights."""
        for model in ("chatbot.document", "chatbot.link"):
            record = self.env[model].search([("uuid", "=", source_uuid)], limit=1)
            if record:
                return record
        return self.env["chatbot.document"]

    def _apply_engine_status(
        self, version, state, chunks=None, error=None, indexed_at=None, pages=None, progress=None, seq=None
    ):
        """Apply a status reported by the engine; False when it is older than the record.
        ``progress`` is (done, total) while processing; it is cleared in any other state. ``seq``
        orders the engine's statuses: one that arrives after a newer one is dropped."""
        self.ensure_one()
        if version < self.version or state not in dict(SOURCE_STATES):
            return False
        if seq is not None and seq <= self.engine_status_seq:
            return False
        vals = {"state": state, "error": error or False}
        if seq is not None:
            vals["engine_status_seq"] = seq
        if state == "processing":
            if self.state != "processing" or not self.processing_started_at:
                vals["processing_started_at"] = fields.Datetime.now()
            if progress is not None:
                total = max(0, int(progress[1]))
                vals.update(progress_done=min(max(0, int(progress[0])), total), progress_total=total)
        else:
            vals.update(progress_done=0, progress_total=0, processing_started_at=False)
        if chunks is not None:
            vals["chunk_count"] = max(0, int(chunks))
        if state == "ready":
            vals["indexed_at"] = indexed_at or fields.Datetime.now()
        if pages is not None:
            vals.update(self._engine_pages_vals(pages))
        self.with_context(**{SKIP_SYNC: True}).write(vals)
        self._bus_notify_status()
        return True

    def _engine_pages_vals(self, pages):
        """Fields for a crawl's {indexed, skipped}; documents have none."""
        return {}

    def _bus_status_fields(self):
        return super()._bus_status_fields() + [
            "state",
            "chunk_count",
            "error",
            "indexed_at",
            "progress_done",
            "progress_total",
            "progress_display",
        ]


def _duration(seconds):
    """A rough human duration: 45 s, 3 min, 2 h 5 min."""
    if seconds < 60:
        return "%d s" % seconds
    minutes = round(seconds / 60)
    if minutes < 60:
        return "%d min" % minutes
    return "%d h %d min" % divmod(minutes, 60)
