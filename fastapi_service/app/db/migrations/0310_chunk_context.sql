-- Contextual chunks (CONTEXTUAL_CHUNKS) are keyword-indexed with the context they are embedded
-- with: "Title — Heading" (app/ingestion/chunking.py), stored apart from the text so snippets and
-- citations still quote `content` alone. '' for a plain chunk.
ALTER TABLE chunks ADD COLUMN context text NOT NULL DEFAULT '';
ALTER TABLE chunk_staging ADD COLUMN context text NOT NULL DEFAULT '';

-- tsv is generated from the context, the separator the embedding uses, then the text. For a chunk
-- without context the expression is chunk_tsvector(ts_config, content), as before: every existing
-- chunk has context '' (the default above), so its recomputed tsv equals the old one and its BM25
-- postings (which the 0200 triggers keyed on tsv lexemes) stay valid. The column is re-created
-- because PostgreSQL 16 cannot change a generation expression; the rewrite fires no trigger.
ALTER TABLE chunks DROP COLUMN tsv;
ALTER TABLE chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
    chunk_tsvector(ts_config, CASE WHEN context = '' THEN content ELSE context || E'\n\n' || content END)
) STORED;
