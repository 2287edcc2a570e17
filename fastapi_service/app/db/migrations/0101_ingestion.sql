-- Ingestion: status callbacks to Odoo (a durable outbox) and indexes the workers need.

-- One row per status change still to be delivered to Odoo. Written in the same transaction as
-- the change; drained by the workers with retries and backoff; several undelivered rows of one
-- source collapse into the newest (the writer deletes older undelivered rows).
CREATE TABLE source_status_outbox (
    id              bigserial PRIMARY KEY,
    chatbot_id      uuid        NOT NULL,
    source_id       uuid        NOT NULL,
    version         bigint      NOT NULL,
    payload         jsonb       NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX source_status_outbox_due_idx ON source_status_outbox (next_attempt_at);
CREATE INDEX source_status_outbox_source_idx ON source_status_outbox (source_id);

-- The periodic sweep looks for links whose refresh is due.
CREATE INDEX sources_refresh_due_idx ON sources (next_refresh_at) WHERE next_refresh_at IS NOT NULL AND NOT deleted;
