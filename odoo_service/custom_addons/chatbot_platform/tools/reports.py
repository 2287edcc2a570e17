"""Rendering of the engine's operations reports (transcripts), and the Q&A document text.

Plain functions without the ORM: testable without a database. Everything that came from a
visitor, a model or a document is escaped; nothing is trusted as HTML.
"""

from markupsafe import Markup, escape

RATING_ICONS = {"up": "👍", "down": "👎"}


def _lines(text):
    return Markup("<br/>").join(escape(line) for line in (text or "").split("\n"))


def transcript_html(messages, labels):
    """One block per message; answers carry their sources, whether they answered, and the
    visitor's thumbs and comment. ``labels``: translated words (you, bot, sources, unanswered...)."""
    parts = []
    for message in messages:
        if message.get("role") == "user":
            parts.append(
                Markup("<div class='o_chatbot_turn_user mb-1'><b>%s</b> %s <small class='text-muted'>%s</small></div>")
                % (labels["visitor"], _lines(message.get("content")), message.get("created_at") or "")
            )
            continue
        sources = Markup("").join(
            Markup("<li>%s%s <small class='text-muted'>(%.2f)</small><br/><small>%s</small></li>")
            % (
                src.get("name") or src.get("url") or src.get("source") or "",
                (", p. %s" % src["page"]) if isinstance(src.get("page"), int) else "",
                float(src.get("score") or 0),
                src.get("snippet") or "",
            )
            for src in message.get("sources") or []
        )
        badges = []
        if message.get("answered") is False:
            badges.append(Markup("<span class='badge text-bg-warning'>%s</span>") % labels["unanswered"])
        if message.get("generator"):
            badges.append(Markup("<span class='badge text-bg-light'>%s</span>") % message["generator"])
        feedback = message.get("feedback") or None
        if feedback:
            badges.append(
                Markup("<span class='o_chatbot_feedback'>%s %s</span>")
                % (RATING_ICONS.get(feedback.get("rating"), ""), feedback.get("comment") or "")
            )
        parts.append(
            Markup("<div class='o_chatbot_turn_bot mb-3'><b>%s</b> %s<div>%s</div>%s</div>")
            % (
                labels["bot"],
                _lines(message.get("content")),
                Markup(" ").join(badges),
                Markup("<div class='mt-1'>%s<ul>%s</ul></div>") % (labels["sources"], sources) if sources else "",
            )
        )
    return Markup("").join(parts)


def transcript_text(messages):
    """The transcript as plain text (the handoff attachment)."""
    return "\n\n".join(
        "[%s] %s: %s" % (m.get("created_at") or "", "Visitor" if m.get("role") == "user" else "Bot", m.get("content"))
        for m in messages
    )


def qa_document_text(question, answer, variants=()):
    """The curated answer as a Markdown source: the question (and how else it was asked) as the
    heading, the answer as the section's text. The engine keeps a heading as the section's context
    (extractive answers score each sentence with it), so the answer's sentences are what is quoted."""
    question = " ".join(question.split())
    others = [" ".join(v.split()) for v in variants if v.strip() and " ".join(v.split()) != question]
    heading = " / ".join([question, *others]).replace("#", "")
    return "# %s\n\n%s\n" % (heading, answer.strip())
