-- The version of each chatbot's set of chunk vectors, for the API's in-process copies of them
-- (app/retrieval/vectors.py): raised in the same transaction as every change to the set, so a
-- snapshot that reads version V reads exactly the chunks a copy made at V holds, and a search
-- can check its copy in the statement that uses it. No row: version 0 (never changed since this
-- migration; a copy made at 0 is invalidated by the first change, which creates the row).
--
-- Unlike the BM25 tables (0200) this is one row per chatbot that writers update: two transactions
-- writing chunks of the same chatbot queue for it from their first chunk write to their commit —
-- the short swap at the end of an ingestion job (ingestion/repository.replace_chunks), never the
-- extraction or the embedding, which run before it. Rows are taken in chatbot order (no deadlock
-- between statements that touch several chatbots).
CREATE TABLE chunk_set_versions (
    chatbot_id uuid   PRIMARY KEY,
    version    bigint NOT NULL
);

CREATE FUNCTION chunk_set_bump(chatbot_ids uuid[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO chunk_set_versions AS v (chatbot_id, version)
    SELECT DISTINCT id, 1 FROM unnest(chatbot_ids) AS id ORDER BY id
    ON CONFLICT (chatbot_id) DO UPDATE SET version = v.version + 1
$$;

CREATE FUNCTION chunk_set_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM chunk_set_bump(ARRAY(SELECT DISTINCT chatbot_id FROM chunk_set_rows));
    RETURN NULL;
END $$;
CREATE TRIGGER chunks_set_insert AFTER INSERT ON chunks
    REFERENCING NEW TABLE AS chunk_set_rows FOR EACH STATEMENT EXECUTE FUNCTION chunk_set_changed();
CREATE TRIGGER chunks_set_delete AFTER DELETE ON chunks
    REFERENCING OLD TABLE AS chunk_set_rows FOR EACH STATEMENT EXECUTE FUNCTION chunk_set_changed();

-- Nothing updates a chunk's vector or chatbot today (a language change updates `ts_config` only);
-- should anything, the row-level trigger (transition tables cannot take a column list) keeps the
-- versions true.
CREATE FUNCTION chunk_set_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM chunk_set_bump(ARRAY[OLD.chatbot_id, NEW.chatbot_id]);
    RETURN NULL;
END $$;
CREATE TRIGGER chunks_set_update AFTER UPDATE OF embedding, chatbot_id ON chunks
    FOR EACH ROW EXECUTE FUNCTION chunk_set_updated();
