-- The API's in-process copies of a chatbot's chunks (app/retrieval/vectors.py) now hold its BM25
-- postings beside its vectors, so the version of its chunk set (0313) must move with every change
-- to its postings too: a language re-index (chatbots/repository.reindex_chunks) updates chunks'
-- `ts_config`, and so their generated `tsv` and, through 0200's update trigger, their postings,
-- without touching a vector. Every UPDATE of chunks now raises the versions of the chatbots it
-- touched, once per statement (a transition table, which cannot take a column list: hence any
-- update), replacing 0313's row-level trigger on `embedding` and `chatbot_id`.
--
-- Lock order is unchanged: triggers on chunks fire in name order, so a re-index takes the
-- chatbot's bm25_stats row (0314, via chunks_bm25_update) and then its chunk_set_versions row,
-- as an ingestion's insert does.
DROP TRIGGER chunks_set_update ON chunks;
DROP FUNCTION chunk_set_updated();

CREATE FUNCTION chunk_set_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM chunk_set_bump(ARRAY(
        SELECT chatbot_id FROM chunk_set_old UNION SELECT chatbot_id FROM chunk_set_new));
    RETURN NULL;
END $$;
CREATE TRIGGER chunks_set_update AFTER UPDATE ON chunks
    REFERENCING OLD TABLE AS chunk_set_old NEW TABLE AS chunk_set_new
    FOR EACH STATEMENT EXECUTE FUNCTION chunk_set_updated();
