-- Searches run generic plans (app/db/pool.py): each search statement is planned once per
-- connection for every chatbot, without knowing which. PostgreSQL then estimates a chatbot's rows
-- as the table's rows over the number of distinct chatbots its sample found: half the table when
-- one large chatbot sits beside one small one, and the plan would scan the whole table for every
-- chatbot's search. Declared instead: one distinct chatbot per 100 chunks (per 10,000 postings) —
-- so a generic plan reaches its chatbot's rows through the indexes, whatever the table holds.
-- Plans made for a known chatbot are unchanged for the chatbots ANALYZE finds most common (their
-- measured share); others are estimated smaller, which suits their index scans too.
ALTER TABLE chunks ALTER COLUMN chatbot_id SET (n_distinct = -0.01);
ALTER TABLE bm25_docs ALTER COLUMN chatbot_id SET (n_distinct = -0.01);
ALTER TABLE bm25_postings ALTER COLUMN chatbot_id SET (n_distinct = -0.0001);
ANALYZE chunks, bm25_docs, bm25_postings;
