"""Running a chatbot from Odoo: conversations, transcripts, unanswered questions, daily usage, handoff."""
