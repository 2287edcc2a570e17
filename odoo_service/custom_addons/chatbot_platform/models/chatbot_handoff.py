import base64

from markupsafe import Markup
from odoo import api, fields, models

from ..tools import reports

REASONS = [("button", "Widget button"), ("phrase", "Handoff phrase")]


class ChatbotHandoff(models.Model):
    """A visitor asked for a person: the engine's notice, and the follow-up it created.

    With the CRM app installed (a soft dependency: checked at run time) the follow-up is a lead
    with the transcript attached; otherwise a to-do activity on the chatbot for its owner.
    """

    _name = "chatbot.handoff"
    _description = "Chatbot handoff to a person"
    _order = "id desc"

    chatbot_id = fields.Many2one("chatbot.chatbot", required=True, ondelete="cascade", index=True, readonly=True)
    company_id = fields.Many2one(related="chatbot_id.company_id", store=True, index=True)
    session_uuid = fields.Char(string="Session", required=True, readonly=True)
    reason = fields.Selection(REASONS, readonly=True)
    note = fields.Text(string="Visitor's note", readonly=True)
    transcript = fields.Text(readonly=True)
    attachment_id = fields.Many2one("ir.attachment", readonly=True)
    activity_id = fields.Many2one("mail.activity", readonly=True, ondelete="set null")
    lead_model = fields.Char(readonly=True)
    lead_res_id = fields.Integer(readonly=True)

    _sql_constraints = [
        ("session_unique", "unique(session_uuid)", "A session is handed off once."),
    ]

    @api.model
    def _receive(self, chatbot, data):
        """Record the engine's notice once (a retried delivery finds the first) and follow it up."""
        session = str(data["session"])
        existing = self.search([("session_uuid", "=", session)], limit=1)
        if existing:
            return existing
        messages = [m for m in data.get("transcript") or [] if isinstance(m, dict)]
        text = reports.transcript_text(messages)
        note = (data.get("note") or "").strip()[:2000]
        handoff = self.create(
            {
                "chatbot_id": chatbot.id,
                "session_uuid": session,
                "reason": data.get("reason") if data.get("reason") in dict(REASONS) else False,
                "note": note or False,
                "transcript": text,
            }
        )
        handoff._follow_up()
        return handoff

    def _follow_up(self):
        self.ensure_one()
        bot = self.chatbot_id
        owner = bot.user_id or bot.create_uid
        summary = self.env._("A visitor of %(name)s asks for a person", name=bot.name)
        body = Markup("<p>%s</p>%s<pre>%s</pre>") % (
            summary,
            Markup("<p><b>%s</b> %s</p>") % (self.env._("Note:"), self.note) if self.note else "",
            self.transcript,
        )
        Lead = self.env.get("crm.lead")  # None unless the CRM app is installed
        if Lead is not None:
            lead = Lead.create(
                {
                    "name": summary,
                    "description": body,
                    "user_id": owner.id,
                    "company_id": bot.company_id.id,
                }
            )
            self.write({"lead_model": "crm.lead", "lead_res_id": lead.id})
            self._attach(lead._name, lead.id)
            return
        attachment = self._attach(bot._name, bot.id)
        activity = bot.activity_schedule(
            "mail.mail_activity_data_todo",
            summary=summary,
            note=body,
            user_id=owner.id,
        )
        activity.attachment_ids = [(4, attachment.id)]
        self.activity_id = activity

    def _attach(self, res_model, res_id):
        attachment = self.env["ir.attachment"].create(
            {
                "name": "conversation-%s.txt" % self.session_uuid,
                "mimetype": "text/plain",
                "datas": base64.b64encode(self.transcript.encode()),
                "res_model": res_model,
                "res_id": res_id,
            }
        )
        self.attachment_id = attachment
        return attachment

    def action_open_transcript(self):
        self.ensure_one()
        return self.env["chatbot.conversation.transcript"]._open(self.chatbot_id, self.session_uuid)
