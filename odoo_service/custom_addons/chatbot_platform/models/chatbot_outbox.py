import base64
import hashlib
import json
import logging
import os
import threading
import time
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from ..tools import backoff, engine_client, webhooks
from .chatbot_sync_mixin import VERSION_SEQUENCE

_logger = logging.getLogger(__name__)

PRECOMMIT_KEY = "chatbot_platform.outbox_trigger"
DEFAULT_ENGINE_URL = "http://127.0.0.1:8000"
DONE_RETENTION_DAYS = 14


def _sha256_of(content_base64):
    return hashlib.sha256(base64.b64decode(content_base64)).hexdigest() if content_base64 else None


class ChatbotOutbox(models.Model):
    """Transactional outbox: one row per resource state to deliver to the engine.

    Rows are written in the user's transaction, which also triggers the delivery cron; the cron
    sends them after commit, in its own transactions, with exponential backoff. A newer write to the same resource rewrites its undelivered
    row (coalescing) unless a sender holds that row, in which case a new row is queued.
    """

    _name = "chatbot.outbox"
    _description = "Chatbot engine delivery"
    _order = "id desc"
    _rec_name = "path"

    res_model = fields.Char(string="Resource model", required=True, readonly=True)
    res_id = fields.Integer(string="Resource id", readonly=True)
    resource_uuid = fields.Char(string="Resource UUID", required=True, readonly=True, index=True)
    chatbot_uuid = fields.Char(string="Chatbot UUID", required=True, readonly=True, index=True)
    chatbot_id = fields.Many2one("chatbot.chatbot", readonly=True, ondelete="set null", index=True)
    company_id = fields.Many2one("res.company", readonly=True, index=True)
    operation = fields.Selection([("upsert", "Upsert"), ("delete", "Delete")], required=True, readonly=True)
    method = fields.Char(required=True, readonly=True)
    path = fields.Char(required=True, readonly=True)
    version = fields.Integer(required=True, readonly=True)
    payload = fields.Text(required=True, readonly=True)
    webhook_id = fields.Char(string="Webhook id", required=True, readonly=True)
    state = fields.Selection(
        [
            ("pending", "Pending"),
            ("retrying", "Retrying"),
            ("done", "Delivered"),
            ("failed", "Failed"),
            ("cancelled", "Superseded"),
        ],
        default="pending",
        required=True,
        readonly=True,
        index=True,
    )
    attempts = fields.Integer(readonly=True)
    next_attempt_at = fields.Datetime(readonly=True, index=True, default=fields.Datetime.now)
    last_attempt_at = fields.Datetime(readonly=True)
    delivered_at = fields.Datetime(readonly=True)
    last_status = fields.Integer(string="Last HTTP status", readonly=True)
    last_error = fields.Text(readonly=True)

    def init(self):
        self.env.cr.execute(SQL("CREATE SEQUENCE IF NOT EXISTS %s", SQL.identifier(VERSION_SEQUENCE)))

    # -- actions --------------------------------------------------------------------------------
    def action_retry(self):
        rows = self.filtered(lambda row: row.state in ("failed", "retrying"))
        rows.write({"state": "pending", "next_attempt_at": fields.Datetime.now()})
        for row in rows:
            resource = row._resource()
            if resource and resource.version == row.version:
                resource._sync_mark("pending")
        if rows:
            self._schedule_delivery()
        return True

    # -- configuration --------------------------------------------------------------------------
    @api.model
    def _engine_url(self):
        # sudo: ir.config_parameter - the engine URL is not secret and any chatbot user needs it
        param = self.env["ir.config_parameter"].sudo().get_param("chatbot_platform.engine_url")
        return (param or os.environ.get("ENGINE_URL") or DEFAULT_ENGINE_URL).rstrip("/")

    @api.model
    def _engine_public_url(self):
        # sudo: ir.config_parameter - public URL of the widget script, not secret
        param = self.env["ir.config_parameter"].sudo().get_param("chatbot_platform.engine_public_url")
        # Browsers cannot reach the internal ENGINE_URL (e.g. http://api:8000 in Compose).
        return (param or os.environ.get("ENGINE_PUBLIC_URL") or self._engine_url()).rstrip("/")

    @api.model
    def _webhook_secret(self):
        """The shared secret (environment first); ValueError when missing or malformed."""
        # sudo: ir.config_parameter - test/dev fallback for WEBHOOK_SECRET; never shown to users
        secret = os.environ.get("WEBHOOK_SECRET") or self.env["ir.config_parameter"].sudo().get_param(
            "chatbot_platform.webhook_secret"
        )
        webhooks.secret_bytes(secret or "")
        return secret

    @api.model
    def _engine_client(self):
        return engine_client.EngineClient(self._engine_url(), self._webhook_secret())

    @api.model
    def _tenant(self, company):
        # sudo: ir.config_parameter - database.uuid identifies this Odoo for the engine
        db_uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid")
        return "%s:%s" % (db_uuid, company.id)

    @api.model
    def _next_version(self):
        self.env.cr.execute(SQL("SELECT nextval(%s)", VERSION_SEQUENCE))
        return self.env.cr.fetchone()[0]

    # -- enqueue (in the user's transaction) ----------------------------------------------------
    @api.model
    def _enqueue(self, record, operation, payload):
        return self._enqueue_values(
            res_model=record._name,
            res_id=record.id,
            resource_uuid=record.uuid,
            chatbot=record._sync_chatbot(),
            path=record._sync_path(),
            operation=operation,
            payload=payload,
        )

    @api.model
    def _enqueue_orphan_delete(self, chatbot, source_uuid):
        """Queue the removal of a source the engine has but Odoo no longer knows."""
        return self._enqueue_values(
            res_model="chatbot.document",
            res_id=0,
            resource_uuid=source_uuid,
            chatbot=chatbot,
            path="/internal/v1/chatbots/%s/sources/%s" % (chatbot.uuid, source_uuid),
            operation="delete",
            payload={"version": self._next_version()},
        )

    @api.model
    def _enqueue_values(self, *, res_model, res_id, resource_uuid, chatbot, path, operation, payload):
        vals = {
            "res_model": res_model,
            "res_id": res_id,
            "resource_uuid": resource_uuid,
            "chatbot_uuid": chatbot.uuid,
            "chatbot_id": chatbot.id,
            "company_id": chatbot.company_id.id,
            "operation": operation,
            "method": "PUT" if operation == "upsert" else "DELETE",
            "path": path,
            "version": payload["version"],
            "payload": json.dumps(payload, indent=2, sort_keys=True),
            "webhook_id": webhooks.new_message_id(),
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": fields.Datetime.now(),
            "last_error": False,
            "last_status": 0,
        }
        self.flush_model()
        # a row a sender is delivering right now is locked: leave it and queue a new one
        self.env.cr.execute(
            SQL(
                "SELECT id FROM chatbot_outbox WHERE resource_uuid = %s AND state IN ('pending', 'retrying')"
                " ORDER BY id DESC LIMIT 1 FOR UPDATE SKIP LOCKED",
                resource_uuid,
            )
        )
        found = self.env.cr.fetchone()
        if found:
            row = self.browse(found[0])
            row.write(vals)
        else:
            row = self.create(vals)
        stale = self.search([("resource_uuid", "=", resource_uuid), ("state", "=", "failed"), ("id", "!=", row.id)])
        stale.write({"state": "cancelled"})
        if operation == "delete" and res_model == "chatbot.chatbot":
            # deleting the chatbot removes all its sources in the engine
            self._cancel_pending(chatbot.uuid, exclude_id=row.id)
        self._schedule_delivery()
        return row

    @api.model
    def _cancel_pending(self, chatbot_uuid, exclude_id):
        self.flush_model()
        self.env.cr.execute(
            SQL(
                "SELECT id FROM chatbot_outbox WHERE chatbot_uuid = %s AND id != %s"
                " AND state IN ('pending', 'retrying', 'failed') FOR UPDATE SKIP LOCKED",
                chatbot_uuid,
                exclude_id,
            )
        )
        ids = [row_id for (row_id,) in self.env.cr.fetchall()]
        self.browse(ids).write({"state": "cancelled"})

    def _schedule_delivery(self):
        """Wake the delivery cron when this transaction commits (the queue_job pattern).

        Nothing here talks to the engine: a save never waits for it, up or down. A precommit hook
        writes one `ir.cron.trigger` per transaction, atomically with the queued rows, and Odoo
        notifies the cron workers after COMMIT (``ir.cron._trigger``); a cron thread then delivers
        in its own transactions.
        """
        data = self.env.cr.precommit.data
        if data.get(PRECOMMIT_KEY):
            return
        data[PRECOMMIT_KEY] = True
        env = self.env

        @env.cr.precommit.add
        def trigger_delivery():
            env["chatbot.outbox"]._trigger_cron(None)

    # -- delivery (cron, own transactions) -----------------------------------------------
    @api.model
    def _cron_deliver(self):
        self._deliver_due(limit=500, time_budget=50)

    @api.model
    def _cron_gc(self):
        limit = fields.Datetime.now() - timedelta(days=DONE_RETENTION_DAYS)
        self.search([("state", "in", ("done", "cancelled")), ("write_date", "<", limit)]).unlink()

    @api.model
    def _lock_next_due(self, ids=None):
        """Lock the oldest due row that no other sender holds; source rows wait for their
        chatbot's undelivered upsert so that the engine knows the chatbot first."""
        self.flush_model()
        self.env.cr.execute(
            SQL(
                """
            SELECT o.id FROM chatbot_outbox o
             WHERE o.state IN ('pending', 'retrying') AND o.next_attempt_at <= %s %s
               AND NOT EXISTS (
                   SELECT 1 FROM chatbot_outbox p
                    WHERE o.res_model != 'chatbot.chatbot' AND p.resource_uuid = o.chatbot_uuid
                      AND p.id < o.id AND p.state IN ('pending', 'retrying'))
             ORDER BY o.id LIMIT 1 FOR UPDATE OF o SKIP LOCKED
            """,
                fields.Datetime.now(),
                SQL("AND o.id IN %s", tuple(ids)) if ids else SQL(""),
            )
        )
        found = self.env.cr.fetchone()
        return self.browse(found[0]) if found else self.browse()

    @api.model
    def _deliver_due(self, ids=None, limit=100, time_budget=None):
        """Deliver due rows one by one (each in its own transaction outside tests)."""
        auto_commit = not getattr(threading.current_thread(), "testing", False)
        try:
            client = self._engine_client()
        except ValueError:
            client = None
        started = time.monotonic()
        delivered = 0
        while delivered < limit:
            if time_budget and time.monotonic() - started > time_budget:
                break
            row = self._lock_next_due(ids)
            if not row:
                break
            result = row._deliver(client)
            delivered += 1
            if auto_commit:
                self.env.cr.commit()
            if result and result.outcome == engine_client.RETRY and result.status is None:
                break  # engine unreachable: the cron takes over the remaining rows
        return delivered

    def _resource(self):
        self.ensure_one()
        if self.res_model not in self.env:
            return None
        return self.env[self.res_model].browse(self.res_id).exists() or None

    def _deliver(self, client):
        """Send this (locked) row once and record the outcome on it and on its resource."""
        self.ensure_one()
        now = fields.Datetime.now()
        resource = self._resource()
        if self.operation == "upsert" and (not resource or resource.version != self.version):
            self.write({"state": "cancelled", "last_error": False})
            return None
        payload = json.loads(self.payload)
        content = None
        if self.operation == "upsert" and self.res_model == "chatbot.document":
            content = resource._content_base64()
        if client is None:
            result = engine_client.DeliveryResult(
                engine_client.RETRY, 0, "WEBHOOK_SECRET is not configured (or malformed)"
            )
        elif content is not None and _sha256_of(content) != payload["document"].get("sha256"):
            # The filestore lost or changed the saved file (a filestore restored without its
            # database, a file removed by hand): never send it, the engine would index a wrong
            # document, and no retry brings it back.
            result = engine_client.DeliveryResult(
                engine_client.PERMANENT,
                0,
                "the stored file is missing or differs from the one saved (SHA-256 %s); upload the file again"
                % payload["document"].get("sha256"),
            )
        else:
            if content is not None:
                payload["document"]["content_base64"] = content
            result = client.deliver(self.method, self.path, payload, self.webhook_id)
        attempts = self.attempts + 1
        vals = {"attempts": attempts, "last_attempt_at": now, "last_status": result.status or 0}
        if result.outcome == engine_client.DELIVERED:
            vals.update(state="done", delivered_at=now, last_error=False)
            mark = ("synced", False)
        elif result.outcome == engine_client.SUPERSEDED:
            # The engine holds a newer state (or has deleted the chatbot): drop this row. When it
            # is still the record's current version, nothing newer will follow: say so on it.
            message = "Not applied by the engine: %s" % (result.detail or "superseded")
            vals.update(state="cancelled", last_error=message)
            mark = ("failed", message)
        else:
            if result.status:
                status = "HTTP %s" % result.status
            else:  # 0: refused here before sending; None: the engine did not answer
                status = "not sent" if result.status == 0 else "no response"
            message = "%s: %s" % (status, result.detail) if result.detail else status
            if result.outcome == engine_client.RETRY:
                delay = backoff.retry_delay(attempts)
                if result.retry_after:
                    delay = max(delay, result.retry_after)
                next_attempt = now + timedelta(seconds=delay)
                vals.update(state="retrying", next_attempt_at=next_attempt, last_error=message)
                mark = (
                    "retrying",
                    "%s (attempt %d, next try at %s UTC)"
                    % (message, attempts, fields.Datetime.to_string(next_attempt)),
                )
                self._trigger_cron(next_attempt)
            else:
                vals.update(state="failed", last_error=message)
                mark = ("failed", message)
        self.write(vals)
        if resource and resource.version == self.version:
            resource._sync_mark(*mark)
        return result

    @api.model
    def _trigger_cron(self, at):
        """Run the delivery cron at `at` (None: as soon as the current transaction commits)."""
        # sudo: ir.cron - any chatbot user's save schedules the delivery job, which runs as root
        cron = self.env.ref("chatbot_platform.ir_cron_chatbot_outbox_deliver", raise_if_not_found=False)
        if cron:
            cron.sudo()._trigger(at)
