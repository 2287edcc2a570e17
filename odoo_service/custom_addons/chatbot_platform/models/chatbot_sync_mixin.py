import uuid

from odoo import api, fields, models
from odoo.tools import SQL

VERSION_SEQUENCE = "chatbot_platform_version_seq"
STATUS_CHANNEL = "chatbot_platform"  # subchannel of a res.company
STATUS_NOTIFICATION = "chatbot_platform/status"
SKIP_SYNC = "chatbot_platform_skip_sync"


class ChatbotSyncMixin(models.AbstractModel):
    """A record mirrored in the engine under its UUID.

    Writes that change a synced field take a new ``version`` from one PostgreSQL sequence and
    enqueue an outbox row in the same transaction; nothing talks to the engine here.
    """

    _name = "chatbot.sync.mixin"
    _description = "Record synchronised with the RAG engine"

    uuid = fields.Char(
        string="UUID",
        required=True,
        readonly=True,
        copy=False,
        index=True,
        default=lambda self: str(uuid.uuid4()),
    )
    version = fields.Integer(readonly=True, copy=False, default=0)
    sync_state = fields.Selection(
        [
            ("pending", "Pending"),
            ("synced", "Synced"),
            ("retrying", "Retrying"),
            ("failed", "Failed"),
        ],
        string="Sync",
        default="pending",
        readonly=True,
        copy=False,
        required=True,
    )
    sync_error = fields.Text(string="Sync error", readonly=True, copy=False)
    synced_at = fields.Datetime(string="Last synced", readonly=True, copy=False)

    # -- hooks for the concrete models ----------------------------------------------------------
    def _sync_tracked_fields(self):
        """Field names whose change must be sent to the engine."""
        return set()

    def _sync_chatbot(self):
        """The chatbot this record belongs to (itself for a chatbot)."""
        raise NotImplementedError

    def _sync_path(self):
        raise NotImplementedError

    def _sync_payload(self):
        """The upsert body, built from the record's current (freshly versioned) state."""
        raise NotImplementedError

    # -- CRUD -----------------------------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        if not self.env.context.get(SKIP_SYNC):
            records._sync_enqueue_upsert()
        return records

    def write(self, vals):
        res = super().write(vals)
        if not self.env.context.get(SKIP_SYNC) and self._sync_tracked_fields() & set(vals):
            self._sync_enqueue_upsert()
        return res

    def unlink(self):
        if not self.env.context.get(SKIP_SYNC):
            self._sync_enqueue_delete()
        return super().unlink()

    # -- business methods -----------------------------------------------------------------------
    def _sync_bump_version(self):
        """Give every record a new version from the shared sequence and mark it pending."""
        if not self:
            return
        self.flush_recordset(["version", "sync_state", "sync_error"])
        self.env.cr.execute(
            SQL(
                "UPDATE %s SET version = nextval(%s), sync_state = 'pending', sync_error = NULL WHERE id IN %s",
                SQL.identifier(self._table),
                VERSION_SEQUENCE,
                tuple(self.ids),
            )
        )
        self.invalidate_recordset(["version", "sync_state", "sync_error"])

    def _sync_enqueue_upsert(self):
        self._sync_bump_version()
        # sudo: chatbot.outbox - internal delivery queue written on behalf of a change the
        # current user was already allowed to make on this record
        outbox = self.env["chatbot.outbox"].sudo()
        for record in self:
            outbox._enqueue(record, "upsert", record._sync_payload())

    def _sync_enqueue_delete(self):
        # sudo: chatbot.outbox - see _sync_enqueue_upsert
        outbox = self.env["chatbot.outbox"].sudo()
        for record in self:
            outbox._enqueue(record, "delete", {"version": outbox._next_version()})

    def _sync_mark(self, state, error=False):
        """Record a delivery outcome on the resource (not a synced field: no new version)."""
        vals = {"sync_state": state, "sync_error": error or False}
        if state == "synced":
            vals["synced_at"] = fields.Datetime.now()
        self.with_context(**{SKIP_SYNC: True}).write(vals)
        self._bus_notify_status()

    # -- live status ----------------------------------------------------------------------------
    def _bus_status_fields(self):
        return ["sync_state", "sync_error"]

    def _bus_notify_status(self):
        """Push the record's status to the open forms and lists of its company's users (the bus
        sends it after commit; `ir.websocket` subscribes chatbot users to their companies)."""
        bus = self.env["bus.bus"]
        for record in self:
            company = record.company_id
            if not company:
                continue
            values = record.read(record._bus_status_fields())[0]
            values.update(model=record._name)
            bus._sendone((company, STATUS_CHANNEL), STATUS_NOTIFICATION, values)

    def action_sync_retry(self):
        """Send the current state again now, with a new version (the "Retry" button)."""
        self._sync_enqueue_upsert()
        return True
