import re
import uuid
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..tools import api_keys, payloads, webhooks
from .chatbot_sync_mixin import SKIP_SYNC

ROTATION_GRACE = timedelta(hours=24)
PREVIEW_LIFETIME = timedelta(hours=2)
PREVIEW_MIN_REMAINING = timedelta(minutes=15)
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class ChatbotApiKey(models.Model):
    """An API key of a chatbot. Only its SHA-256 hash and 12-character prefix are stored."""

    _name = "chatbot.api.key"
    _description = "Chatbot API key"
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(required=True)
    chatbot_id = fields.Many2one("chatbot.chatbot", required=True, ondelete="cascade", index=True, check_company=True)
    company_id = fields.Many2one(related="chatbot_id.company_id", store=True, index=True)
    kind = fields.Selection(
        [("publishable", "Publishable (widget)"), ("secret", "Secret (server-to-server)")],
        required=True,
        default="publishable",
    )
    uuid = fields.Char(string="UUID", required=True, readonly=True, copy=False, default=lambda self: str(uuid.uuid4()))
    prefix = fields.Char(required=True, readonly=True, copy=False)
    key_hash = fields.Char(string="SHA-256", required=True, readonly=True, copy=False)
    expires_at = fields.Datetime(string="Expires", readonly=True, copy=False)
    last_used_at = fields.Datetime(string="Last used", readonly=True, copy=False)
    revoked = fields.Boolean(readonly=True, copy=False)
    revoked_at = fields.Datetime(readonly=True, copy=False)
    is_preview = fields.Boolean(
        string="Test chat key",
        readonly=True,
        help="Short-lived secret key Odoo derives from WEBHOOK_SECRET for the Test chat preview.",
    )
    replaced_by_id = fields.Many2one("chatbot.api.key", string="Replaced by", readonly=True, copy=False)
    state = fields.Selection(
        [("active", "Active"), ("expiring", "Expiring"), ("expired", "Expired"), ("revoked", "Revoked")],
        compute="_compute_state",
    )

    _sql_constraints = [
        ("key_hash_unique", "unique(key_hash)", "An API key with this hash already exists."),
        ("uuid_unique", "unique(uuid)", "API key UUIDs must be unique."),
    ]

    @api.depends("revoked", "expires_at")
    def _compute_state(self):
        now = fields.Datetime.now()
        for key in self:
            if key.revoked:
                key.state = "revoked"
            elif key.expires_at and key.expires_at <= now:
                key.state = "expired"
            elif key.expires_at:
                key.state = "expiring"
            else:
                key.state = "active"

    @api.constrains("key_hash", "prefix", "kind")
    def _check_hash(self):
        for key in self:
            if not SHA256_RE.match(key.key_hash or ""):
                raise ValidationError(self.env._("An API key is stored as a lowercase hex SHA-256 hash only."))
            prefix = key.prefix or ""
            if not prefix.startswith(api_keys.KIND_PREFIXES[key.kind]) or len(prefix) != api_keys.DISPLAY_PREFIX_LENGTH:
                raise ValidationError(self.env._("The key prefix does not match its kind."))

    # -- CRUD -----------------------------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        keys = super().create(vals_list)
        if not self.env.context.get(SKIP_SYNC):
            keys.chatbot_id._sync_enqueue_upsert()
        return keys

    def write(self, vals):
        if "chatbot_id" in vals or "key_hash" in vals or "prefix" in vals:
            raise UserError(self.env._("An API key cannot be changed; generate a new one instead."))
        res = super().write(vals)
        if not self.env.context.get(SKIP_SYNC) and {"kind", "expires_at", "revoked"} & set(vals):
            self.chatbot_id._sync_enqueue_upsert()
        return res

    def unlink(self):
        chatbots = self.chatbot_id
        res = super().unlink()
        if not self.env.context.get(SKIP_SYNC):
            chatbots.exists()._sync_enqueue_upsert()
        return res

    # -- actions --------------------------------------------------------------------------------
    def action_revoke(self):
        self.filtered(lambda k: not k.revoked).write({"revoked": True, "revoked_at": fields.Datetime.now()})
        return True

    def action_rotate(self):
        """Issue a replacement key; this one keeps working for ROTATION_GRACE (24 h)."""
        self.ensure_one()
        if self.revoked:
            raise UserError(self.env._("Key %(prefix)s is revoked; generate a new key instead.", prefix=self.prefix))
        new_key, plain = self._generate(self.chatbot_id, self.kind, self.name)
        grace_end = fields.Datetime.now() + ROTATION_GRACE
        self.write(
            {
                "expires_at": min(self.expires_at, grace_end) if self.expires_at else grace_end,
                "replaced_by_id": new_key.id,
            }
        )
        return new_key._reveal_action(plain)

    # -- business methods -----------------------------------------------------------------------
    @api.model
    def _generate(self, chatbot, kind, name, expires_at=False):
        """Create a key; returns (record, plain key). The plain key is never stored or logged."""
        plain = api_keys.generate(kind)
        record = self.create(
            {
                "name": name,
                "chatbot_id": chatbot.id,
                "kind": kind,
                "expires_at": expires_at,
                "prefix": api_keys.display_prefix(plain),
                "key_hash": api_keys.hash_key(plain),
            }
        )
        return record, plain

    def _payload_entry(self):
        self.ensure_one()
        return payloads.api_key_entry(self.uuid, self.kind, self.prefix, self.key_hash, self.expires_at)

    def _reveal_action(self, plain_key):
        self.ensure_one()
        snippet = False
        if self.kind == "publishable":
            public_url = self.env["chatbot.outbox"]._engine_public_url()
            snippet = self.env["chatbot.chatbot"]._embed_snippet(public_url, plain_key)
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Copy your API key now"),
            "res_model": "chatbot.api.key.reveal",
            "view_mode": "form",
            "target": "new",
            # values only travel to the browser: the reveal wizard refuses to store them
            "context": {
                "default_api_key_id": self.id,
                "default_plain_key": plain_key,
                "default_embed_snippet": snippet,
            },
        }

    @api.model
    def _preview_key_material(self):
        return webhooks.secret_bytes(self.env["chatbot.outbox"]._webhook_secret())

    def _preview_plain_key(self):
        """Recompute the Test chat key from WEBHOOK_SECRET and this record's UUID."""
        self.ensure_one()
        return api_keys.derive("secret", self._preview_key_material(), "chatbot_platform.preview:" + self.uuid)

    @api.model
    def _ensure_preview_key(self, chatbot):
        """A preview key valid for at least 15 more minutes; True when one had to be created."""
        now = fields.Datetime.now()
        previews = self.search([("chatbot_id", "=", chatbot.id), ("is_preview", "=", True), ("revoked", "=", False)])
        valid = previews.filtered(lambda k: k.expires_at and k.expires_at > now + PREVIEW_MIN_REMAINING)
        if valid:
            return valid[0], False
        try:
            material = self._preview_key_material()
        except ValueError as exc:
            raise UserError(self.env._("Test chat needs WEBHOOK_SECRET (whsec_...) in Odoo's environment.")) from exc
        previews.write({"revoked": True, "revoked_at": now})
        key_uuid = str(uuid.uuid4())
        plain = api_keys.derive("secret", material, "chatbot_platform.preview:" + key_uuid)
        key = self.with_context(**{SKIP_SYNC: True}).create(
            {
                "name": self.env._("Test chat preview"),
                "chatbot_id": chatbot.id,
                "kind": "secret",
                "uuid": key_uuid,
                "is_preview": True,
                "expires_at": now + PREVIEW_LIFETIME,
                "prefix": api_keys.display_prefix(plain),
                "key_hash": api_keys.hash_key(plain),
            }
        )
        chatbot._sync_enqueue_upsert()
        return key, True
