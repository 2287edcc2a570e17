-- Running a chatbot from Odoo (app/conversations): unanswered questions an admin marked handled,
-- and a session's request for a human (handoff).

-- One row per normalised question text (see conversations/repository.py NORMALISED): the question
-- leaves the unanswered report until it is asked, unanswered, again after handled_at.
CREATE TABLE unanswered_handled (
    chatbot_id   uuid        NOT NULL,
    question_key text        NOT NULL,
    handled_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chatbot_id, question_key)
);

ALTER TABLE chat_sessions ADD COLUMN IF NOT EXISTS handoff_at timestamptz;
ALTER TABLE chat_sessions ADD COLUMN IF NOT EXISTS handoff_reason text;

-- Handoff notices to Odoo, delivered like source status callbacks (at least once, signed, retried
-- with backoff; the webhook-id is stable per session so Odoo creates one lead/activity).
CREATE TABLE handoff_outbox (
    id              bigserial   PRIMARY KEY,
    chatbot_id      uuid        NOT NULL,
    session_id      uuid        NOT NULL UNIQUE,
    payload         jsonb       NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX handoff_outbox_due_idx ON handoff_outbox (next_attempt_at);
