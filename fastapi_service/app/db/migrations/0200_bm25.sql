-- BM25 keyword index, maintained by triggers on `chunks` so that writers (ingestion) need not know.
-- An inverted index as a table: one posting per (chatbot, lexeme, chunk) with the term frequency
-- and the chunk's length in tokens. There are no shared counters (document frequencies are counted
-- from the postings at query time), so concurrent writers never contend on a hot row.

CREATE TABLE bm25_postings (
    chatbot_id uuid    NOT NULL,
    term       text    NOT NULL,
    chunk_id   bigint  NOT NULL,
    tf         integer NOT NULL,
    doc_len    integer NOT NULL,
    PRIMARY KEY (chatbot_id, term, chunk_id)
);

-- Per-chunk length, for N and the average document length of a chatbot.
CREATE TABLE bm25_docs (
    chunk_id   bigint  PRIMARY KEY,
    chatbot_id uuid    NOT NULL,
    doc_len    integer NOT NULL
);
CREATE INDEX bm25_docs_chatbot_idx ON bm25_docs (chatbot_id) INCLUDE (doc_len);

-- Number of tokens in a tsvector (sum of positions). Stop words are already gone.
CREATE FUNCTION bm25_doc_len(v tsvector) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(sum(coalesce(array_length(u.positions, 1), 1)), 0)::integer FROM unnest(v) AS u
$$;

CREATE FUNCTION bm25_index_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bm25_docs (chunk_id, chatbot_id, doc_len)
    SELECT n.id, n.chatbot_id, bm25_doc_len(n.tsv) FROM bm25_new_rows n;
    INSERT INTO bm25_postings (chatbot_id, term, chunk_id, tf, doc_len)
    SELECT n.chatbot_id, u.lexeme, n.id, coalesce(array_length(u.positions, 1), 1), d.doc_len
    FROM bm25_new_rows n
    JOIN bm25_docs d ON d.chunk_id = n.id
    CROSS JOIN LATERAL unnest(n.tsv) AS u;
    RETURN NULL;
END $$;

CREATE FUNCTION bm25_unindex_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM bm25_postings p
    USING bm25_old_rows o CROSS JOIN LATERAL unnest(o.tsv) AS u
    WHERE p.chatbot_id = o.chatbot_id AND p.term = u.lexeme AND p.chunk_id = o.id;
    DELETE FROM bm25_docs d USING bm25_old_rows o WHERE d.chunk_id = o.id;
    RETURN NULL;
END $$;

CREATE TRIGGER chunks_bm25_insert AFTER INSERT ON chunks
    REFERENCING NEW TABLE AS bm25_new_rows FOR EACH STATEMENT EXECUTE FUNCTION bm25_index_rows();
CREATE TRIGGER chunks_bm25_delete AFTER DELETE ON chunks
    REFERENCING OLD TABLE AS bm25_old_rows FOR EACH STATEMENT EXECUTE FUNCTION bm25_unindex_rows();
-- An UPDATE is an unindex of the old rows followed by an index of the new ones.
CREATE FUNCTION bm25_reindex_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM bm25_postings p
    USING bm25_old_rows o CROSS JOIN LATERAL unnest(o.tsv) AS u
    WHERE p.chatbot_id = o.chatbot_id AND p.term = u.lexeme AND p.chunk_id = o.id;
    DELETE FROM bm25_docs d USING bm25_old_rows o WHERE d.chunk_id = o.id;
    INSERT INTO bm25_docs (chunk_id, chatbot_id, doc_len)
    SELECT n.id, n.chatbot_id, bm25_doc_len(n.tsv) FROM bm25_new_rows n;
    INSERT INTO bm25_postings (chatbot_id, term, chunk_id, tf, doc_len)
    SELECT n.chatbot_id, u.lexeme, n.id, coalesce(array_length(u.positions, 1), 1), d.doc_len
    FROM bm25_new_rows n
    JOIN bm25_docs d ON d.chunk_id = n.id
    CROSS JOIN LATERAL unnest(n.tsv) AS u;
    RETURN NULL;
END $$;
CREATE TRIGGER chunks_bm25_update AFTER UPDATE ON chunks
    REFERENCING OLD TABLE AS bm25_old_rows NEW TABLE AS bm25_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bm25_reindex_rows();

-- Backfill whatever was indexed before this migration.
INSERT INTO bm25_docs (chunk_id, chatbot_id, doc_len) SELECT id, chatbot_id, bm25_doc_len(tsv) FROM chunks;
INSERT INTO bm25_postings (chatbot_id, term, chunk_id, tf, doc_len)
SELECT c.chatbot_id, u.lexeme, c.id, coalesce(array_length(u.positions, 1), 1), d.doc_len
FROM chunks c JOIN bm25_docs d ON d.chunk_id = c.id CROSS JOIN LATERAL unnest(c.tsv) AS u;

-- Approximate vector search for large chatbots (small ones are searched exactly).
CREATE INDEX chunks_embedding_hnsw_idx ON chunks USING hnsw (embedding vector_cosine_ops);
