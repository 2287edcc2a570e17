import html
import re
from datetime import timedelta

from markupsafe import Markup
from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..tools import allowed_domains as domain_rules
from ..tools import engine_client, payloads
from .chatbot_sync_mixin import SKIP_SYNC

COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
LANGUAGES = [
    ("en", "English"),
    ("fr", "French"),
    ("de", "German"),
    ("es", "Spanish"),
    ("it", "Italian"),
    ("nl", "Dutch"),
    ("pt", "Portuguese"),
    ("ar", "Arabic"),
]
ANALYTICS_DAYS = 30


class ChatbotChatbot(models.Model):
    _name = "chatbot.chatbot"
    _inherit = ["chatbot.sync.mixin", "mail.thread", "mail.activity.mixin"]
    _description = "Chatbot"
    _order = "name, id"
    _check_company_auto = True

    name = fields.Char(required=True)
    company_id = fields.Many2one("res.company", required=True, index=True, default=lambda self: self.env.company)
    user_id = fields.Many2one("res.users", string="Owner", default=lambda self: self.env.user)
    active = fields.Boolean(default=True)
    language = fields.Selection(LANGUAGES, default=payloads.DEFAULT_LANGUAGE, required=True)
    prompt_id = fields.Many2one("chatbot.prompt", string="Prompt", check_company=True)
    system_prompt = fields.Text(related="prompt_id.system_prompt", string="System prompt")
    user_template = fields.Text(related="prompt_id.user_template", string="User template")
    generation_model = fields.Char(
        string="Model", help="Model name for the engine's generator; empty uses the engine's default."
    )
    temperature = fields.Float(default=payloads.DEFAULT_TEMPERATURE, digits=(3, 2))
    max_tokens = fields.Integer(string="Max tokens", default=payloads.DEFAULT_MAX_TOKENS)
    top_k = fields.Integer(string="Passages (top k)", default=payloads.DEFAULT_TOP_K)
    allowed_domains = fields.Text(
        help="One domain per line (example.com, *.example.com, localhost:8080, 127.0.0.1:8170); "
        "wildcards over a public suffix such as *.com are refused. "
        "Publishable keys only work from these origins.",
    )
    rate_key_per_minute = fields.Integer(string="Requests per key per minute", help="0 = engine default")
    rate_ip_per_minute = fields.Integer(string="Requests per IP per minute", help="0 = engine default")
    widget_title = fields.Char()
    widget_color = fields.Char(default=payloads.DEFAULT_WIDGET_COLOR)
    widget_welcome = fields.Char(default=payloads.DEFAULT_WIDGET_WELCOME)
    widget_suggestions = fields.Text(help="One suggested question per line.")
    handoff_enabled = fields.Boolean(string="Talk to a person", help="Show a 'Talk to a person' button in the widget.")
    handoff_phrases = fields.Text(
        help="One phrase per line; a question containing one (any case) also asks for a person, e.g. 'talk to a human'."
    )
    handoff_message = fields.Char(
        help="What the visitor is told after asking for a person; empty: the engine's default sentence."
    )
    handoff_ids = fields.One2many("chatbot.handoff", "chatbot_id", string="Handoffs")

    document_ids = fields.One2many("chatbot.document", "chatbot_id", string="Documents")
    link_ids = fields.One2many("chatbot.link", "chatbot_id", string="Links")
    api_key_ids = fields.One2many(
        "chatbot.api.key", "chatbot_id", string="API keys", domain=[("is_preview", "=", False)]
    )
    document_count = fields.Integer(compute="_compute_counts")
    link_count = fields.Integer(compute="_compute_counts")
    ready_source_count = fields.Integer(string="Ready sources", compute="_compute_counts")
    failed_source_count = fields.Integer(string="Failed sources", compute="_compute_counts")
    api_key_count = fields.Integer(string="API key count", compute="_compute_counts")
    embed_snippet = fields.Char(compute="_compute_embed_snippet")

    analytics_data = fields.Json(readonly=True, copy=False)
    analytics_refreshed_at = fields.Datetime(readonly=True, copy=False)
    analytics_html = fields.Html(compute="_compute_analytics_html", sanitize=False)

    _sql_constraints = [
        ("uuid_unique", "unique(uuid)", "Chatbot UUIDs must be unique."),
    ]

    # -- computes -------------------------------------------------------------------------------
    @api.depends("document_ids.state", "link_ids.state", "api_key_ids.revoked")
    def _compute_counts(self):
        for bot in self:
            states = bot.document_ids.mapped("state") + bot.link_ids.mapped("state")
            bot.document_count = len(bot.document_ids)
            bot.link_count = len(bot.link_ids)
            bot.ready_source_count = states.count("ready")
            bot.failed_source_count = states.count("failed")
            bot.api_key_count = len(bot.api_key_ids.filtered(lambda k: not k.revoked))

    @api.depends("uuid")
    def _compute_embed_snippet(self):
        public_url = self.env["chatbot.outbox"]._engine_public_url()
        for bot in self:
            bot.embed_snippet = self._embed_snippet(public_url, "PASTE_YOUR_PUBLISHABLE_KEY")

    @api.model
    def _embed_snippet(self, public_url, key):
        return '<script src="%s/widget.js" data-key="%s" defer></script>' % (public_url, key)

    @api.depends("analytics_data")
    def _compute_analytics_html(self):
        for bot in self:
            bot.analytics_html = bot._render_analytics(bot.analytics_data)

    # -- constraints ----------------------------------------------------------------------------
    @api.constrains("allowed_domains")
    def _check_allowed_domains(self):
        for bot in self:
            for domain in payloads.split_lines(bot.allowed_domains):
                problem = domain_rules.problem(domain)
                if problem == domain_rules.URL:
                    raise ValidationError(
                        self.env._(
                            "Allowed domain %(domain)s must be a bare host name like example.com "
                            "or *.example.com, not a URL.",
                            domain=domain,
                        )
                    )
                if problem == domain_rules.PUBLIC_SUFFIX:
                    raise ValidationError(
                        self.env._(
                            "Allowed domain %(domain)s would allow every site under a public suffix; "
                            "name your own domain, e.g. *.example.com.",
                            domain=domain,
                        )
                    )
                if problem == domain_rules.IP_WILDCARD:
                    raise ValidationError(
                        self.env._("Allowed domain %(domain)s: an IP address has no subdomains.", domain=domain)
                    )
                if problem:
                    raise ValidationError(
                        self.env._(
                            "Allowed domain %(domain)s is not a valid host name (expected example.com, "
                            "*.example.com, localhost:8080 or an IPv4 address such as 127.0.0.1:8170).",
                            domain=domain,
                        )
                    )

    @api.constrains("temperature", "max_tokens", "top_k", "rate_key_per_minute", "rate_ip_per_minute")
    def _check_generation(self):
        for bot in self:
            low, high = payloads.TEMPERATURE_RANGE
            if not low <= bot.temperature <= high:
                raise ValidationError(
                    self.env._("Temperature must be between %(low)s and %(high)s.", low=low, high=high)
                )
            low, high = payloads.MAX_TOKENS_RANGE
            if not low <= bot.max_tokens <= high:
                raise ValidationError(
                    self.env._("Max tokens must be between %(low)s and %(high)s.", low=low, high=high)
                )
            low, high = payloads.TOP_K_RANGE
            if not low <= bot.top_k <= high:
                raise ValidationError(
                    self.env._("Passages (top k) must be between %(low)s and %(high)s.", low=low, high=high)
                )
            if bot.rate_key_per_minute < 0 or bot.rate_ip_per_minute < 0:
                raise ValidationError(self.env._("Rate limits cannot be negative (0 means the engine default)."))

    @api.constrains("widget_color")
    def _check_widget_color(self):
        for bot in self:
            if bot.widget_color and not COLOR_RE.match(bot.widget_color):
                raise ValidationError(
                    self.env._("Widget colour %(color)s must look like #1A2B3C.", color=bot.widget_color)
                )

    # -- CRUD -----------------------------------------------------------------------------------
    def unlink(self):
        # the engine drops a chatbot's sources and keys with it: one DELETE is enough
        quiet = {SKIP_SYNC: True, "active_test": False}
        self.with_context(**quiet).mapped("document_ids").with_context(**quiet).unlink()
        self.with_context(**quiet).mapped("link_ids").with_context(**quiet).unlink()
        self.env["chatbot.api.key"].with_context(**quiet).search([("chatbot_id", "in", self.ids)]).unlink()
        return super().unlink()

    # -- sync -----------------------------------------------------------------------------------
    def _sync_tracked_fields(self):
        return {
            "name",
            "company_id",
            "active",
            "language",
            "prompt_id",
            "generation_model",
            "temperature",
            "max_tokens",
            "top_k",
            "allowed_domains",
            "rate_key_per_minute",
            "rate_ip_per_minute",
            "widget_title",
            "widget_color",
            "widget_welcome",
            "widget_suggestions",
            "handoff_enabled",
            "handoff_phrases",
            "handoff_message",
        }

    def _sync_chatbot(self):
        return self

    def _sync_path(self):
        self.ensure_one()
        return "/internal/v1/chatbots/%s" % self.uuid

    def _sync_payload(self):
        self.ensure_one()
        keys = (
            self.env["chatbot.api.key"]
            .with_context(active_test=False)
            .search([("chatbot_id", "=", self.id), ("revoked", "=", False)], order="id")
        )
        return payloads.chatbot_payload(
            version=self.version,
            tenant=self.env["chatbot.outbox"]._tenant(self.company_id),
            name=self.name,
            active=self.active,
            language=self.language,
            system_prompt=self.prompt_id.system_prompt,
            user_template=self.prompt_id.user_template,
            model=self.generation_model,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            top_k=self.top_k,
            allowed_domains=(self.allowed_domains or "").lower(),
            api_keys=[key._payload_entry() for key in keys],
            key_per_minute=self.rate_key_per_minute,
            ip_per_minute=self.rate_ip_per_minute,
            widget_title=self.widget_title,
            widget_color=self.widget_color,
            widget_welcome=self.widget_welcome,
            widget_suggestions=self.widget_suggestions,
            handoff_enabled=self.handoff_enabled,
            handoff_phrases=self.handoff_phrases,
            handoff_message=self.handoff_message,
        )

    # -- actions --------------------------------------------------------------------------------
    def action_view_documents(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("chatbot_platform.chatbot_document_action")
        action["domain"] = [("chatbot_id", "=", self.id)]
        action["context"] = {"default_chatbot_id": self.id}
        return action

    def action_view_links(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("chatbot_platform.chatbot_link_action")
        action["domain"] = [("chatbot_id", "=", self.id)]
        action["context"] = {"default_chatbot_id": self.id}
        return action

    def action_view_conversations(self):
        """The chatbot's conversations, first page loaded from the engine."""
        self.ensure_one()
        browser = self.env["chatbot.conversation.browser"].create({"chatbot_id": self.id})
        return browser.action_search()

    def action_view_unanswered(self):
        self.ensure_one()
        return self.env["chatbot.unanswered.report"].create({"chatbot_id": self.id}).action_load()

    def action_view_usage(self):
        self.ensure_one()
        self.env["chatbot.usage.daily"]._refresh(self)
        action = self.env["ir.actions.act_window"]._for_xml_id("chatbot_platform.chatbot_usage_daily_action")
        action["domain"] = [("chatbot_id", "=", self.id)]
        return action

    def action_new_api_key(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("New API key"),
            "res_model": "chatbot.api.key.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_chatbot_id": self.id},
        }

    def action_open_test_chat(self):
        self.ensure_one()
        self.env["chatbot.api.key"]._ensure_preview_key(self)
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Test chat: %(name)s", name=self.name),
            "res_model": "chatbot.test.chat.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_chatbot_id": self.id},
        }

    def action_refresh_analytics(self):
        """Pull the last 30 days of analytics from the engine (a read: nothing to roll back)."""
        client = self._client_or_raise()
        since = fields.Date.to_string(fields.Date.today() - timedelta(days=ANALYTICS_DAYS))
        for bot in self:
            try:
                data = client.get_json("/internal/v1/chatbots/%s/analytics" % bot.uuid, {"since": since})
            except engine_client.EngineError as exc:
                raise UserError(
                    self.env._("Could not load analytics for %(name)s: %(reason)s", name=bot.name, reason=str(exc))
                ) from exc
            bot.write({"analytics_data": data or {}, "analytics_refreshed_at": fields.Datetime.now()})
            bot._apply_key_usage((data or {}).get("keys") or [])
        return True

    def _apply_key_usage(self, usage):
        """Copy the engine's `last_used_at` of this chatbot's keys (it never moves backwards)."""
        self.ensure_one()
        by_uuid = {str(k.get("id")): k.get("last_used_at") for k in usage if k.get("last_used_at")}
        # sudo: chatbot.api.key - a read-only field of this (already access-checked) chatbot's own keys
        keys = self.env["chatbot.api.key"].sudo().search([("chatbot_id", "=", self.id)])
        for key in keys.filtered(lambda k: k.uuid in by_uuid):
            used = payloads.parse_utc(by_uuid[key.uuid])
            if used and (not key.last_used_at or used > key.last_used_at):
                key.last_used_at = used

    def action_reconcile(self):
        client = self._client_or_raise()
        for bot in self:
            try:
                bot._reconcile(client)
            except engine_client.EngineError as exc:
                raise UserError(
                    self.env._(
                        "Could not read the engine inventory of %(name)s: %(reason)s",
                        name=bot.name,
                        reason=str(exc),
                    )
                ) from exc
        return True

    # -- business methods -----------------------------------------------------------------------
    def _handled_path(self):
        return "/internal/v1/chatbots/%s/unanswered/handled" % self.uuid

    def _mark_questions_handled(self, questions):
        """Tell the engine these questions are dealt with (a signed POST, on the user's click)."""
        self.ensure_one()
        self.check_access("write")
        client = self._client_or_raise()
        try:
            return client.post_json(self._handled_path(), {"questions": questions[:200]})
        except engine_client.EngineError as exc:
            raise UserError(
                self.env._("The engine could not mark the question handled: %(reason)s", reason=str(exc))
            ) from exc

    def _mark_questions_handled_after_commit(self, questions):
        """The same, once this transaction has committed (a Q&A document was created with it); a
        failure only leaves the questions in the report, where the user can mark them again."""
        self.ensure_one()
        self.check_access("write")
        client = self._client_or_raise()
        pending = self.env.cr.postcommit.data.setdefault("chatbot_platform.handled", [])
        if not pending:

            @self.env.cr.postcommit.add
            def send_handled():
                for path, batch in pending:
                    try:
                        client.post_json(path, {"questions": batch})
                    except engine_client.EngineError:
                        continue
                pending.clear()

        pending.append((self._handled_path(), questions[:200]))

    def _client_or_raise(self):
        try:
            return self.env["chatbot.outbox"]._engine_client()
        except ValueError as exc:
            raise UserError(
                self.env._(
                    "The engine connection is not configured: set WEBHOOK_SECRET (whsec_...) in Odoo's environment."
                )
            ) from exc

    @api.model
    def _cron_reconcile(self):
        try:
            client = self.env["chatbot.outbox"]._engine_client()
        except ValueError:
            return  # not configured: deliveries show the reason on every record already
        for bot in self.with_context(active_test=False).search([]):
            try:
                bot._reconcile(client)
            except engine_client.EngineError:
                continue  # engine down: the next run repairs it

    def _reconcile(self, client):
        """Compare the engine's inventory with Odoo and queue what repairs the difference.

        Returns a dict of counts: resent, deleted, repaired.
        """
        self.ensure_one()
        outbox = self.env["chatbot.outbox"].sudo()  # sudo: chatbot.outbox - read queue state
        sources = list(self.document_ids) + list(self.link_ids)  # two models: a list, not a recordset
        inventory = client.get_json("/internal/v1/chatbots/%s/sources" % self.uuid)
        in_flight = set(
            outbox.search(
                [
                    ("chatbot_uuid", "=", self.uuid),
                    ("state", "in", ("pending", "retrying")),
                ]
            ).mapped("resource_uuid")
        )
        counts = {"resent": 0, "deleted": 0, "repaired": 0}
        inventory = [item for item in inventory or [] if item.get("source")] if inventory is not None else None
        if inventory is None or (not inventory and sources):
            # the engine does not know this chatbot (or lost everything under it)
            if self.uuid not in in_flight:
                self._sync_enqueue_upsert()
            for source in [s for s in sources if s.uuid not in in_flight]:
                source._sync_enqueue_upsert()
                counts["resent"] += 1
            return counts
        remote = {item["source"]: item for item in inventory}
        for source in sources:
            if source.uuid in in_flight:
                continue
            item = remote.get(source.uuid)
            if item is None or int(item.get("version") or 0) != source.version:
                source._sync_enqueue_upsert()
                counts["resent"] += 1
            elif (item.get("state"), item.get("chunks") or 0, item.get("error") or False) != (
                source.state,
                source.chunk_count,
                source.error or False,
            ):
                source._apply_engine_status(source.version, item.get("state"), item.get("chunks"), item.get("error"))
                counts["repaired"] += 1
        local = {source.uuid for source in sources}
        live_remote = {key for key, item in remote.items() if item.get("state") != "deleted"}
        for source_uuid in live_remote - local - in_flight:
            outbox._enqueue_orphan_delete(self, source_uuid)
            counts["deleted"] += 1
        return counts

    def _render_analytics(self, data):
        if not data:
            return Markup("<p class='text-muted'>%s</p>") % self.env._(
                "No analytics loaded yet. Click “Refresh analytics”."
            )
        esc = html.escape
        per_day = data.get("per_day") or []
        peak = max([row.get("questions") or 0 for row in per_day] + [1])
        rows = "".join(
            "<tr><td>%s</td><td>%d</td><td><div style='background:#4F46E5;height:10px;width:%d%%'></div></td></tr>"
            % (esc(str(row.get("day"))), int(row.get("questions") or 0), int(100 * (row.get("questions") or 0) / peak))
            for row in per_day
        )
        feedback = data.get("feedback") or {}
        top = "".join(
            "<tr><td>%s</td><td>%d</td></tr>" % (esc(str(q.get("question"))), int(q.get("count") or 0))
            for q in data.get("top_questions") or []
        )
        unanswered = "".join(
            "<tr><td>%s</td><td>%d</td><td>%s</td></tr>"
            % (esc(str(q.get("question"))), int(q.get("count") or 0), esc(str(q.get("last_asked") or "")))
            for q in data.get("unanswered") or []
        )
        _ = self.env._
        return Markup(
            "<div class='o_chatbot_analytics'>"
            "<h4>%s</h4><p>👍 %d &#160; 👎 %d</p>"
            "<h4>%s</h4><table class='table table-sm'><tr><th>%s</th><th>%s</th><th/></tr>%s</table>"
            "<h4>%s</h4><table class='table table-sm'><tr><th>%s</th><th>%s</th></tr>%s</table>"
            "<h4>%s</h4><table class='table table-sm'><tr><th>%s</th><th>%s</th><th>%s</th></tr>%s</table>"
            "</div>"
            % (
                esc(_("Feedback")),
                int(feedback.get("up") or 0),
                int(feedback.get("down") or 0),
                esc(_("Questions per day")),
                esc(_("Day")),
                esc(_("Questions")),
                rows,
                esc(_("Top questions")),
                esc(_("Question")),
                esc(_("Count")),
                top,
                esc(_("Unanswered questions")),
                esc(_("Question")),
                esc(_("Count")),
                esc(_("Last asked")),
                unanswered,
            )
        )
