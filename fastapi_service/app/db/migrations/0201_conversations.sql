-- Conversations, per-turn usage and feedback. Everything is keyed by chatbot_id so a chatbot's
-- deletion removes it (see CHATBOT_DATA_DELETES), and every read is scoped by the key's chatbot.

CREATE TABLE chat_sessions (
    id             uuid        PRIMARY KEY,
    chatbot_id     uuid        NOT NULL,
    key_kind       text        NOT NULL CHECK (key_kind IN ('publishable', 'secret')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_active_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_sessions_chatbot_idx ON chat_sessions (chatbot_id, last_active_at DESC);

CREATE TABLE chat_messages (
    id         uuid        PRIMARY KEY,
    session_id uuid        NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    chatbot_id uuid        NOT NULL,
    role       text        NOT NULL CHECK (role IN ('user', 'assistant')),
    content    text        NOT NULL,
    sources    jsonb       NOT NULL DEFAULT '[]',
    generator  text,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX chat_messages_session_idx ON chat_messages (session_id, created_at);
CREATE INDEX chat_messages_chatbot_idx ON chat_messages (chatbot_id);

-- One row per answered turn: what the Odoo dashboards aggregate.
CREATE TABLE usage_events (
    id                bigserial   PRIMARY KEY,
    chatbot_id        uuid        NOT NULL,
    session_id        uuid        NOT NULL,
    message_id        uuid        NOT NULL,
    question          text        NOT NULL,
    generator         text        NOT NULL,
    answered          boolean     NOT NULL,   -- false: nothing relevant was retrieved
    sources           integer     NOT NULL DEFAULT 0,
    latency_ms        integer     NOT NULL DEFAULT 0,
    retrieval_ms      integer     NOT NULL DEFAULT 0,
    prompt_tokens     integer     NOT NULL DEFAULT 0,
    completion_tokens integer     NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_events_chatbot_idx ON usage_events (chatbot_id, created_at);

CREATE TABLE feedback (
    message_id uuid        PRIMARY KEY,
    chatbot_id uuid        NOT NULL,
    rating     text        NOT NULL CHECK (rating IN ('up', 'down')),
    comment    text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feedback_chatbot_idx ON feedback (chatbot_id);
