import asyncio

import asyncpg

from app.db.migrations import apply_migrations, available_migrations, pending_migrations


async def test_migrations_apply_once_and_are_recorded(pg_cluster):
    uri = pg_cluster.uri(await pg_cluster.create_database(template=None))
    conn = await asyncpg.connect(uri)
    try:
        assert await pending_migrations(conn) == [m.version for m in available_migrations()]
        first = await apply_migrations(conn)
        assert first == [m.version for m in available_migrations()]
        assert await apply_migrations(conn) == []  # idempotent
        assert await pending_migrations(conn) == []
        recorded = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        assert recorded == len(first)
        assert await conn.fetchval("SELECT to_regclass('chunks') IS NOT NULL")
    finally:
        await conn.close()


async def test_two_concurrent_starters_apply_each_migration_exactly_once(pg_cluster):
    uri = pg_cluster.uri(await pg_cluster.create_database(template=None))
    conns = [await asyncpg.connect(uri) for _ in range(3)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in conns))
        applied = [v for r in results for v in r]
        assert sorted(applied) == sorted(m.version for m in available_migrations())
        assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations") == len(applied)
    finally:
        for c in conns:
            await c.close()


async def test_a_failing_migration_is_rolled_back_and_not_recorded(pg_cluster, tmp_path):
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok_table (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    uri = pg_cluster.uri(await pg_cluster.create_database(template=None))
    conn = await asyncpg.connect(uri)
    try:
        try:
            await apply_migrations(conn, tmp_path)
        except asyncpg.PostgresError:
            pass
        else:
            raise AssertionError("the bad migration should have failed")
        assert await pending_migrations(conn, tmp_path) == ["0002_bad"]
        assert not await conn.fetchval("SELECT to_regclass('half') IS NOT NULL")
        assert await conn.fetchval("SELECT to_regclass('ok_table') IS NOT NULL")
    finally:
        await conn.close()


async def test_chunks_keep_only_the_indexes_that_reads_and_constraints_use(db):
    # Every index on `chunks` costs each ingestion write; keyword search reads bm25_postings, so the
    # GIN index on `tsv` (0001) is gone (0203).
    names = {r["indexname"] for r in await db.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'chunks'")}
    assert "chunks_tsv_idx" not in names
    assert {"chunks_pkey", "chunks_source_id_ordinal_key", "chunks_embedding_hnsw_idx"} <= names
