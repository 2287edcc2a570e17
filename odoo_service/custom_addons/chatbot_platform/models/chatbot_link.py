from urllib.parse import urlsplit

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools import payloads


class ChatbotLink(models.Model):
    _name = "chatbot.link"
    _inherit = ["chatbot.source.mixin"]
    _description = "Chatbot link"
    _order = "id desc"

    url = fields.Char(string="URL", required=True)
    max_depth = fields.Integer(string="Max depth", default=0, help="0 = only this page; at most 3.")
    max_pages = fields.Integer(string="Max pages", default=20, help="At most 200.")
    pages_indexed = fields.Integer(string="Pages indexed", readonly=True, copy=False)
    pages_skipped = fields.Integer(
        string="Pages skipped",
        readonly=True,
        copy=False,
        help="Pages of the last crawl that were not indexed: refused by robots.txt, errors, not HTML, "
        "redirected off-site.",
    )
    refresh_hours = fields.Integer(string="Refresh every (hours)", default=0, help="0 = never refresh.")

    _sql_constraints = [
        ("uuid_unique", "unique(uuid)", "Link UUIDs must be unique."),
    ]

    @api.constrains("url")
    def _check_url(self):
        for link in self:
            try:
                parts = urlsplit((link.url or "").strip())
                hostname = parts.hostname
            except ValueError:
                parts, hostname = None, None
            if not parts or parts.scheme not in ("http", "https"):
                raise ValidationError(
                    self.env._("%(url)s: only http:// and https:// links can be indexed.", url=link.url)
                )
            if not hostname:
                raise ValidationError(self.env._("%(url)s has no host name.", url=link.url))
            if parts.username or parts.password:
                raise ValidationError(
                    self.env._("%(url)s contains credentials; links must be publicly readable.", url=link.url)
                )

    @api.constrains("max_depth", "max_pages", "refresh_hours")
    def _check_limits(self):
        for link in self:
            if not 0 <= link.max_depth <= payloads.CRAWL_MAX_DEPTH:
                raise ValidationError(
                    self.env._("Max depth must be between 0 and %(max)s.", max=payloads.CRAWL_MAX_DEPTH)
                )
            if not 1 <= link.max_pages <= payloads.CRAWL_MAX_PAGES:
                raise ValidationError(
                    self.env._("Max pages must be between 1 and %(max)s.", max=payloads.CRAWL_MAX_PAGES)
                )
            if link.refresh_hours and not 1 <= link.refresh_hours <= 24 * 365:
                raise ValidationError(self.env._("Refresh interval must be 0 (never) or between 1 and 8760 hours."))

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("url"):
                vals["url"] = vals["url"].strip()
            if not vals.get("name") and vals.get("url"):
                vals["name"] = vals["url"]
        return super().create(vals_list)

    def _engine_pages_vals(self, pages):
        return {"pages_indexed": max(0, pages["indexed"]), "pages_skipped": max(0, pages["skipped"])}

    def _bus_status_fields(self):
        return super()._bus_status_fields() + ["pages_indexed", "pages_skipped"]

    def _sync_tracked_fields(self):
        return {"name", "url", "max_depth", "max_pages", "refresh_hours"}

    def _sync_payload(self):
        self.ensure_one()
        return payloads.link_payload(
            version=self.version,
            name=self.name,
            url=self.url,
            max_depth=self.max_depth,
            max_pages=self.max_pages,
            refresh_hours=self.refresh_hours,
        )
