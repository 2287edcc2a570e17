-- Chunks of a version being indexed, written batch by batch as they are embedded (so a job's
-- memory does not grow with the document), then moved into `chunks` in the swap transaction.
-- Unlogged: after a crash the job is re-run from the start anyway.
CREATE UNLOGGED TABLE chunk_staging (
    source_id      uuid        NOT NULL,
    source_version bigint      NOT NULL,
    ordinal        integer     NOT NULL,
    content        text        NOT NULL,
    metadata       jsonb       NOT NULL DEFAULT '{}',
    embedding      vector(384) NOT NULL,
    PRIMARY KEY (source_id, source_version, ordinal)
);

-- Progress of the running job, shown in the source's status: chunks embedded / chunks in total.
ALTER TABLE sources ADD COLUMN chunks_done integer, ADD COLUMN chunks_total integer;

-- A signed write the engine refused keeps its answer with its webhook-id: the same delivery
-- presented again gets the same refusal (not "duplicate delivery", which Odoo counts as delivered).
ALTER TABLE webhook_receipts ADD COLUMN refused_status integer, ADD COLUMN refused_error text,
    ADD COLUMN refused_detail text;
