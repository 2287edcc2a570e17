-- No query reads `chunks.tsv` through this index: keyword search (BM25) reads `bm25_postings`,
-- which the triggers of 0200 fill from `tsv`. The GIN index only cost every chunk insert and
-- delete (and disk).
DROP INDEX IF EXISTS chunks_tsv_idx;
