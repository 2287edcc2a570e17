-- Keyword search in the chatbot's language (app/languages.py maps a language code to one of
-- PostgreSQL's text-search configurations). The configuration is stored by name (text), not as
-- regconfig: pg_upgrade refuses tables with regconfig columns. The generated column needs an
-- immutable expression, and a text -> regconfig cast is only stable (it reads the catalog with the
-- search path): the wrapper schema-qualifies the name, so only pg_catalog's built-in
-- configurations can be named and the result depends on its arguments alone.
CREATE FUNCTION chunk_tsvector(config text, content text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT to_tsvector(('pg_catalog.' || config)::regconfig, content)
$$;

-- The configuration the chatbot's chunks are indexed with and its queries are parsed with; a
-- chatbot PUT with another language changes both in one transaction (chatbots/repository.py).
ALTER TABLE chatbots ADD COLUMN ts_config text NOT NULL DEFAULT 'english' CHECK (ts_config ~ '^[a-z]+$');

-- Every existing chunk was indexed with 'english': the default keeps its tsv (and so its BM25
-- postings, which the 0200 triggers keyed on tsv lexemes) exactly as they were. The column is
-- re-created because PostgreSQL 16 cannot change a generation expression; the rewrite fires no
-- trigger, and the recomputed tsv equals the old one.
ALTER TABLE chunks ADD COLUMN ts_config text NOT NULL DEFAULT 'english' CHECK (ts_config ~ '^[a-z]+$');
ALTER TABLE chunks DROP COLUMN tsv;
ALTER TABLE chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS (chunk_tsvector(ts_config, content)) STORED;
