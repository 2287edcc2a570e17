-- Keep embeddings inline in the heap row. With the default EXTENDED storage a 384-d vector
-- (1.5 kB) plus a chunk's text exceeds the 2 kB TOAST threshold, and PostgreSQL moves the vector
-- out of line: every distance computation of an exact scan then costs a TOAST fetch (measured:
-- 19 ms instead of ~1 ms for 500 chunks). PLAIN keeps the vector in the row; the text is compressed
-- or moved out of line instead. Affects rows written from now on.
ALTER TABLE chunks ALTER COLUMN embedding SET STORAGE PLAIN;
