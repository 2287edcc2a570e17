-- BM25's per-chatbot statistics — N and the total length of the chatbot's chunks, for avgdl — kept
-- beside bm25_docs instead of counted from it by every keyword search: that count read all the
-- chatbot's bm25_docs rows (0.7 of the 3.9 ms a hybrid search cost PostgreSQL at 11k chunks, and
-- proportionally more above). One row per chatbot, changed by a statement trigger on bm25_docs in
-- the transaction of every change to it, so a search's snapshot sees the statistics of exactly the
-- postings it reads. No row: the chatbot has no chunks.
--
-- The row is a shared counter, which 0200 avoided. Writers of a chatbot's chunks already queue
-- for its chunk_set_versions row (0313) until they commit; they take this one in the same
-- statement, just before (triggers on chunks fire in name order: chunks_bm25_* before
-- chunks_set_*), and always in chatbot order, so it adds no waiting and no deadlock. A language
-- re-index, which rewrites the postings but not the vectors, takes this row alone.
CREATE TABLE bm25_stats (
    chatbot_id uuid   PRIMARY KEY,
    docs       bigint NOT NULL,
    total_len  bigint NOT NULL
);

-- Adds each delta (chatbot, docs, total length) to the chatbot's row, in chatbot order; a row
-- left with no documents is deleted.
CREATE FUNCTION bm25_stats_apply(delta bm25_stats[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO bm25_stats AS s (chatbot_id, docs, total_len)
    SELECT d.chatbot_id, d.docs, d.total_len FROM unnest(delta) AS d ORDER BY d.chatbot_id
    ON CONFLICT (chatbot_id)
        DO UPDATE SET docs = s.docs + excluded.docs, total_len = s.total_len + excluded.total_len;
    DELETE FROM bm25_stats s USING unnest(delta) AS d WHERE s.chatbot_id = d.chatbot_id AND s.docs = 0;
$$;

CREATE FUNCTION bm25_docs_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bm25_stats_apply(ARRAY(
        SELECT ROW(chatbot_id, count(*), sum(doc_len))::bm25_stats FROM bm25_docs_new GROUP BY chatbot_id));
    RETURN NULL;
END $$;

CREATE FUNCTION bm25_docs_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bm25_stats_apply(ARRAY(
        SELECT ROW(chatbot_id, -count(*), -sum(doc_len))::bm25_stats FROM bm25_docs_old GROUP BY chatbot_id));
    RETURN NULL;
END $$;

-- Nothing updates bm25_docs today (0200's triggers delete and insert); should anything, the
-- statistics follow.
CREATE FUNCTION bm25_docs_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bm25_stats_apply(ARRAY(
        SELECT ROW(chatbot_id, sum(docs), sum(len))::bm25_stats FROM (
            SELECT chatbot_id, 1 AS docs, doc_len AS len FROM bm25_docs_new
            UNION ALL
            SELECT chatbot_id, -1, -doc_len FROM bm25_docs_old
        ) AS d GROUP BY chatbot_id));
    RETURN NULL;
END $$;

-- Writers wait here until the statistics below are complete (the migration's transaction).
LOCK TABLE bm25_docs IN SHARE ROW EXCLUSIVE MODE;

CREATE TRIGGER bm25_docs_stats_insert AFTER INSERT ON bm25_docs
    REFERENCING NEW TABLE AS bm25_docs_new FOR EACH STATEMENT EXECUTE FUNCTION bm25_docs_added();
CREATE TRIGGER bm25_docs_stats_delete AFTER DELETE ON bm25_docs
    REFERENCING OLD TABLE AS bm25_docs_old FOR EACH STATEMENT EXECUTE FUNCTION bm25_docs_removed();
CREATE TRIGGER bm25_docs_stats_update AFTER UPDATE ON bm25_docs
    REFERENCING OLD TABLE AS bm25_docs_old NEW TABLE AS bm25_docs_new
    FOR EACH STATEMENT EXECUTE FUNCTION bm25_docs_updated();

INSERT INTO bm25_stats (chatbot_id, docs, total_len)
SELECT chatbot_id, count(*), sum(doc_len) FROM bm25_docs GROUP BY chatbot_id;
