import base64
import re

from odoo import fields, models
from odoo.exceptions import UserError

from ..tools import reports

MAX_ANSWER_CHARS = 20_000


class ChatbotQaWizard(models.TransientModel):
    """Write the answer to an unanswered question: it becomes a text document of the chatbot,
    indexed like any other, and the question leaves the unanswered report once it is saved."""

    _name = "chatbot.qa.wizard"
    _description = "Chatbot Q&A document"

    chatbot_id = fields.Many2one("chatbot.chatbot", required=True, ondelete="cascade")
    group_id = fields.Many2one("chatbot.unanswered.group", ondelete="set null")
    question = fields.Char(required=True)
    variants = fields.Text(string="Also asked as")
    answer = fields.Text(required=True)

    def action_create(self):
        self.ensure_one()
        answer = (self.answer or "").strip()
        question = (self.question or "").strip()
        if not answer or not question:
            raise UserError(self.env._("Write the question and its answer."))
        if len(answer) > MAX_ANSWER_CHARS:
            raise UserError(self.env._("The answer is longer than %(max)s characters.", max=MAX_ANSWER_CHARS))
        variants = [v.strip() for v in (self.variants or "").splitlines() if v.strip()]
        text = reports.qa_document_text(question, answer, variants)
        slug = re.sub(r"[^a-z0-9]+", "-", question.lower()).strip("-")[:60] or "answer"
        document = self.env["chatbot.document"].create(
            {
                "chatbot_id": self.chatbot_id.id,
                "name": self.env._("Q&A: %(question)s", question=question[:150]),
                "filename": "qa-%s.md" % slug,
                "datas": base64.b64encode(text.encode()),
                "qa_question": question[:500],
            }
        )
        # the engine hides the questions once the document exists, i.e. after this commit
        self.chatbot_id._mark_questions_handled_after_commit(list(dict.fromkeys([question, *variants])))
        if self.group_id:
            self.group_id.unlink()
        return {
            "type": "ir.actions.act_window",
            "res_model": "chatbot.document",
            "res_id": document.id,
            "view_mode": "form",
            "target": "current",
        }
