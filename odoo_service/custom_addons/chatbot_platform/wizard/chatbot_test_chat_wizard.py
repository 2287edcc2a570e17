from markupsafe import Markup, escape
from odoo import fields, models
from odoo.exceptions import UserError

from ..tools import engine_client


class ChatbotTestChatWizard(models.TransientModel):
    """Chat with a chatbot through the engine's public API, as a widget visitor would."""

    _name = "chatbot.test.chat.wizard"
    _description = "Chatbot test chat"

    chatbot_id = fields.Many2one("chatbot.chatbot", required=True, ondelete="cascade")
    message = fields.Char()
    session_id = fields.Char(readonly=True)
    transcript = fields.Html(readonly=True, sanitize=True)
    generator = fields.Char(readonly=True)

    def action_send(self):
        self.ensure_one()
        if not (self.message or "").strip():
            raise UserError(self.env._("Type a question first."))
        key, created = self.env["chatbot.api.key"]._ensure_preview_key(self.chatbot_id)
        if created:
            # the new key reaches the engine after this transaction commits: no raise here
            self.transcript = (self.transcript or Markup("")) + Markup("<p class='text-muted'>%s</p>") % (
                self.env._("Preparing the Test chat key for the engine; send again in a few seconds.")
            )
            return self._reopen()
        client = self.env["chatbot.outbox"]._engine_client()
        try:
            # a read-only call on the public API, made on the user's explicit request
            answer = client.chat(key._preview_plain_key(), self.message, self.session_id or None)
        except engine_client.EngineError as exc:
            if exc.status == 401:
                raise UserError(
                    self.env._(
                        "The engine does not accept the Test chat key of %(name)s yet (sync state: %(state)s). "
                        "Wait for the chatbot to be synced, then send again.",
                        name=self.chatbot_id.name,
                        state=self.chatbot_id.sync_state,
                    )
                ) from exc
            raise UserError(self.env._("Test chat failed: %(reason)s", reason=str(exc))) from exc
        sources = Markup("").join(
            Markup("<li>%s%s <small class='text-muted'>(%.2f)</small></li>")
            % (
                src.get("name") or src.get("url") or src.get("source"),
                self.env._(", p. %(page)s", page=src["page"]) if isinstance(src.get("page"), int) else "",
                float(src.get("score") or 0),
            )
            for src in answer.get("sources") or []
        )
        # the answer's line breaks (quoted passages, lists) survive: escaped lines joined by <br/>
        answer_html = Markup("<br/>").join(escape(line) for line in (answer.get("answer") or "").split("\n"))
        turn = Markup("<div class='mb-2'><b>%s</b> %s</div><div class='mb-2'><b>%s</b> %s%s</div><hr/>") % (
            self.env._("You:"),
            self.message,
            self.env._("Bot:"),
            answer_html,
            Markup("<ul>%s</ul>") % sources if sources else "",
        )
        self.write(
            {
                "transcript": (self.transcript or Markup("")) + turn,
                "session_id": answer.get("session_id") or self.session_id,
                "generator": answer.get("generator"),
                "message": False,
            }
        )
        return self._reopen()

    def _reopen(self):
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Test chat: %(name)s", name=self.chatbot_id.name),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
        }
