-- Core schema: chatbots, their API keys (hashes only), sources and searchable chunks.
-- Odoo is the system of record; everything here is derived and keyed by Odoo-generated UUIDs.
CREATE EXTENSION IF NOT EXISTS vector;

-- One row per chatbot ever seen. A DELETE keeps the row as a tombstone (deleted = true) with its
-- version, so that a late PUT with an older version cannot resurrect it.
CREATE TABLE chatbots (
    id              uuid PRIMARY KEY,
    version         bigint      NOT NULL,
    deleted         boolean     NOT NULL DEFAULT false,
    tenant          text        NOT NULL DEFAULT '',
    name            text        NOT NULL DEFAULT '',
    active          boolean     NOT NULL DEFAULT true,
    language        text        NOT NULL DEFAULT 'en',
    prompts         jsonb       NOT NULL DEFAULT '{}',   -- {system, user_template}
    generation      jsonb       NOT NULL DEFAULT '{}',   -- {model, temperature, max_tokens, top_k}
    allowed_domains text[]      NOT NULL DEFAULT '{}',
    rate_limits     jsonb       NOT NULL DEFAULT '{}',   -- {key_per_minute, ip_per_minute}
    widget          jsonb       NOT NULL DEFAULT '{}',   -- {title, color, welcome, suggestions}
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Keys arrive from Odoo as SHA-256 hashes; the plain key never reaches the engine's storage.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    chatbot_id   uuid        NOT NULL REFERENCES chatbots (id) ON DELETE CASCADE,
    kind         text        NOT NULL CHECK (kind IN ('publishable', 'secret')),
    prefix       text        NOT NULL,
    sha256       text        NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    expires_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_chatbot_idx ON api_keys (chatbot_id);

-- Sources (documents and links). `version` is the newest accepted version (desired state);
-- `indexed_version` is the version whose chunks are serving. Tombstoned like chatbots.
CREATE TABLE sources (
    id               uuid PRIMARY KEY,
    chatbot_id       uuid        NOT NULL,
    version          bigint      NOT NULL,
    deleted          boolean     NOT NULL DEFAULT false,
    kind             text        NOT NULL CHECK (kind IN ('document', 'link')),
    name             text        NOT NULL DEFAULT '',
    spec             jsonb       NOT NULL DEFAULT '{}',  -- document metadata (no bytes) or link settings
    content          bytea,                              -- document bytes of `version`
    state            text        NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'processing', 'ready', 'failed')),
    error            text,
    indexed_version  bigint,
    chunk_count      integer     NOT NULL DEFAULT 0,
    indexed_at       timestamptz,
    next_refresh_at  timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sources_chatbot_idx ON sources (chatbot_id);

-- Searchable pieces of a source. Every query filters on chatbot_id (tenant isolation).
CREATE TABLE chunks (
    id             bigserial PRIMARY KEY,
    chatbot_id     uuid        NOT NULL,
    source_id      uuid        NOT NULL,
    source_version bigint      NOT NULL,
    ordinal        integer     NOT NULL,
    content        text        NOT NULL,
    metadata       jsonb       NOT NULL DEFAULT '{}',   -- {title, heading, page, url}
    embedding      vector(384) NOT NULL,
    tsv            tsvector    GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
    UNIQUE (source_id, ordinal)
);
CREATE INDEX chunks_chatbot_idx ON chunks (chatbot_id);
CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv);

-- Standard Webhooks `webhook-id`s already applied, recorded in the same transaction as the effect.
CREATE TABLE webhook_receipts (
    id          text PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_receipts_received_idx ON webhook_receipts (received_at);
