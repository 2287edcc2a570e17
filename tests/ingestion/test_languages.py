"""Keyword search in the chatbot's language: documents ingested through the internal API (the real
worker, real PostgreSQL text-search configurations), searched through `POST /v1/search` in keyword
mode (BM25 only, so a hit is a stemming match, not the embedding's)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from app.chatbots import service as chatbots_service
from app.db.pool import create_pool, init_connection
from app.embedding.service import EmbeddingService
from app.handoff.service import HandoffService
from app.ingestion import queue
from app.ingestion import repository as ingestion_repository
from app.ingestion.runner import IngestionWorker
from app.keys.format import generate_key
from app.languages import FALLBACK_CONFIG, TEXT_SEARCH_CONFIGS
from tests.answering.helpers import Bot, create_bot, insert_chunks, key_entry, put_chatbot
from tests.conftest import make_settings
from tests.ingestion.helpers import document, put_source, wait_settled
from tests.support.migrations import database_before
from tests.support.signing import send_signed


async def ingest(client: Any, db: asyncpg.Connection, bot: Bot, text: str) -> uuid.UUID:
    source = uuid.uuid4()
    r = await put_source(client, bot.id, source, document(1, text.encode(), "page.txt"))
    assert r.status_code == 202, r.text
    row = await wait_settled(db, source, 1)
    assert row["state"] == "ready", row["error"]
    return source


async def keyword_hits(client: Any, bot: Bot, query: str) -> list[uuid.UUID]:
    r = await client.post("/v1/search", json={"query": query, "mode": "keyword"}, headers=bot.sk_headers())
    assert r.status_code == 200, r.text
    return [uuid.UUID(hit["source"]) for hit in r.json()["results"]]


async def switch_language(client: Any, bot: Bot, language: str) -> None:
    bot.payload = {**bot.payload, "language": language}
    await put_chatbot(client, bot.id, bot.payload)


async def until(predicate: Callable[[], Awaitable[bool]], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def reindex_jobs(db: asyncpg.Connection, bot_id: uuid.UUID) -> list[str]:
    """The statuses of the chatbot's re-index jobs, oldest first."""
    rows = await db.fetch(
        "SELECT status::text FROM procrastinate_jobs WHERE task_name = $1 AND args->>'chatbot' = $2 ORDER BY id",
        queue.REINDEX_TASK_NAME,
        str(bot_id),
    )
    return [r["status"] for r in rows]


async def chunk_configs(db: asyncpg.Connection, bot_id: uuid.UUID) -> set[str]:
    rows = await db.fetch("SELECT DISTINCT ts_config FROM chunks WHERE chatbot_id = $1", bot_id)
    return {r["ts_config"] for r in rows}


async def wait_reindexed(db: asyncpg.Connection, bot_id: uuid.UUID, config: str) -> None:
    """Until the chatbot is indexed in `config` and none of its re-index jobs waits or runs."""

    async def done() -> bool:
        current = await db.fetchval("SELECT ts_config FROM chatbots WHERE id = $1", bot_id)
        return current == config and not {"todo", "doing"} & set(await reindex_jobs(db, bot_id))

    await until(done, f"the chatbot's re-index in {config}")
    assert await chunk_configs(db, bot_id) <= {config}


@contextlib.asynccontextmanager
async def chunk_writes_held(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A transaction holding `chunks` in SHARE mode: reads (searches) go on, writes wait. A re-index
    job parks on its UPDATE of the chunks, inside its transaction (the chatbot's row locked)."""
    hold = await asyncpg.connect(db_url)
    try:
        async with hold.transaction():
            await hold.execute("LOCK TABLE chunks IN SHARE MODE")
            yield hold
    finally:
        await hold.close()


@contextlib.asynccontextmanager
async def running_worker(db_url: str, embedder: EmbeddingService) -> AsyncIterator[None]:
    """The workers an API process runs (WORKERS_IN_PROCESS), started on their own."""
    settings = make_settings(database_url=db_url, worker_poll_seconds=0.2)
    pool = await create_pool(settings, db_url)
    reindex = functools.partial(chatbots_service.reindex_language, pool)
    worker = IngestionWorker(settings, db_url, pool, embedder, HandoffService(pool, settings), reindex)
    try:
        await worker.start()
        yield
    finally:
        await worker.stop()
        await pool.close()


@pytest.fixture
async def api(app_factory: Any, db_url: str) -> Any:
    """An API without workers: deferred jobs wait until a worker is started."""
    return await app_factory(make_settings(database_url=db_url, workers_in_process=False))


# (language, document, a query sharing no written word with it that its stemmer conflates)
STEMMING = [
    ("fr", "Les chevaux du centre équestre galopent dans la prairie.", "cheval"),
    ("fr", "Chaque élève reçoit un carnet de notes.", "élèves"),
    ("de", "Die Krankenhäuser der Stadt wurden renoviert.", "Krankenhaus"),
    ("de", "Wir reparieren kaputte Fahrräder schnell.", "Fahrrad"),
    ("es", "Las canciones populares del pueblo son antiguas.", "canción"),
    ("es", "Los niños cantaban en el coro de la escuela.", "cantar"),
]


async def test_every_mapped_configuration_is_one_postgresql_ships(db):
    names = set(TEXT_SEARCH_CONFIGS.values()) | {FALLBACK_CONFIG}
    shipped = {r["cfgname"] for r in await db.fetch("SELECT cfgname FROM pg_ts_config")}
    assert names <= shipped, names - shipped
    for name in names:  # and the generated column's function takes each
        assert await db.fetchval("SELECT chunk_tsvector($1, 'words')", name)


@pytest.mark.parametrize(("language", "text", "query"), STEMMING)
async def test_a_chatbot_stems_documents_and_questions_in_its_language(client, db, language, text, query):
    bot = await create_bot(client, language=language)
    english = await create_bot(client, language="en")
    source = await ingest(client, db, bot, text)
    await ingest(client, db, english, text)
    assert await keyword_hits(client, bot, query) == [source]
    # The same document in an English chatbot: English stemming does not conflate these forms.
    assert await keyword_hits(client, english, query) == []
    configs = await db.fetch("SELECT DISTINCT ts_config FROM chunks WHERE chatbot_id = $1", bot.id)
    assert [r["ts_config"] for r in configs] == [{"fr": "french", "de": "german", "es": "spanish"}[language]]


async def test_stop_words_of_the_language_are_dropped(client, db):
    bot = await create_bot(client, language="fr")
    await ingest(client, db, bot, "Le magasin ouvre à neuf heures.")
    assert await keyword_hits(client, bot, "le") == []  # a French stop word, not a term


async def test_accents_are_kept_where_the_stemmer_keeps_them(client, db):
    """Documented: unaccent is not in the embedded PostgreSQL, so French "eleve" is not "élève";
    the Spanish stemmer folds acute accents itself."""
    french = await create_bot(client, language="fr")
    spanish = await create_bot(client, language="es")
    await ingest(client, db, french, "Chaque élève reçoit un carnet.")
    source = await ingest(client, db, spanish, "La canción del verano.")
    assert await keyword_hits(client, french, "eleve") == []
    assert await keyword_hits(client, spanish, "cancion") == [source]


async def test_a_language_without_a_stemmer_matches_words_as_written(client, db):
    bot = await create_bot(client, language="pl")
    source = await ingest(client, db, bot, "Koty śpią na kanapie.")
    assert await keyword_hits(client, bot, "KOTY") == [source]  # lower-cased, nothing else
    assert await keyword_hits(client, bot, "kot") == []  # no Polish stemmer: no conflation
    assert await db.fetchval("SELECT ts_config FROM chatbots WHERE id = $1", bot.id) == "simple"


async def test_changing_the_language_reindexes_the_chatbots_chunks(client, db):
    bot = await create_bot(client, language="en")
    source = await ingest(client, db, bot, "Les chevaux galopent. Les chevaux mangent du foin.")
    other = await create_bot(client, language="en")
    other_source = await ingest(client, db, other, "Les chevaux galopent.")
    assert await keyword_hits(client, bot, "cheval") == []
    postings_before = await db.fetchval("SELECT count(*) FROM bm25_postings WHERE chatbot_id = $1", bot.id)

    await switch_language(client, bot, "fr")
    await wait_reindexed(db, bot.id, "french")  # the background job
    assert await keyword_hits(client, bot, "cheval") == [source]
    assert await chunk_configs(db, bot.id) == {"french"}
    # the postings are the French lexemes, one set per chunk (nothing left over from English)
    terms = {r["term"] for r in await db.fetch("SELECT term FROM bm25_postings WHERE chatbot_id = $1", bot.id)}
    assert "cheval" in terms and "chevaux" not in terms
    assert await db.fetchval("SELECT count(*) FROM bm25_postings WHERE chatbot_id = $1", bot.id) <= postings_before
    assert await db.fetchval("SELECT count(*) FROM bm25_docs WHERE chatbot_id = $1", bot.id) == (
        await db.fetchval("SELECT count(*) FROM chunks WHERE chatbot_id = $1", bot.id)
    )
    # the other chatbot (still English) is untouched
    assert await keyword_hits(client, other, "cheval") == []
    assert await keyword_hits(client, other, "chevaux") == [other_source]

    await switch_language(client, bot, "en")  # and back
    await wait_reindexed(db, bot.id, "english")
    assert await keyword_hits(client, bot, "cheval") == []
    assert await keyword_hits(client, bot, "chevaux") == [source]


async def test_answers_follow_the_new_language_while_its_reindex_is_pending(client, db, db_url):
    """Extractive answers split and stem sentences in the chatbot's `language` (the key's chatbot,
    the new one at once); they work on the retrieved text, not on the index, so a pending re-index
    only means the keyword side still searches the old index (docs/answering.md)."""
    bot = await create_bot(client, language="en")
    await ingest(client, db, bot, "Les chevaux galopent dans la prairie. Le foin est rangé dans la grange.")
    async with chunk_writes_held(db_url) as hold:
        await switch_language(client, bot, "fr")
        await until_blocked(db, hold.get_server_pid())
        key = await client.services.key_resolver.resolve(bot.sk)
        assert key is not None and key.chatbot.language == "fr"
        r = await client.post("/v1/chat", json={"message": "Où galopent les chevaux ?"}, headers=bot.sk_headers())
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["generator"] == "extractive"
        assert "Les chevaux galopent dans la prairie." in body["answer"], body
        assert await chunk_configs(db, bot.id) == {"english"}
    await wait_reindexed(db, bot.id, "french")


async def blocked_backends(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0"))


async def test_the_put_returns_before_the_reindex_and_searches_keep_the_old_index_until_it_commits(client, db, db_url):
    bot = await create_bot(client, language="en")
    source = await ingest(client, db, bot, "Les chevaux galopent dans la prairie.")
    async with chunk_writes_held(db_url) as hold:
        # Were the PUT to rewrite the chunks itself, it would wait here for the held lock.
        await asyncio.wait_for(switch_language(client, bot, "fr"), 60)
        row = await db.fetchrow("SELECT language, ts_config FROM chatbots WHERE id = $1", bot.id)
        assert (row["language"], row["ts_config"]) == ("fr", "english")
        # The job runs: the chatbot locked, its configuration changed (uncommitted), it waits to
        # rewrite the chunks. Searches meanwhile use the old index, configuration and postings.
        await until_blocked(db, hold.get_server_pid())
        assert await reindex_jobs(db, bot.id) == ["doing"]
        assert await chunk_configs(db, bot.id) == {"english"}
        assert await keyword_hits(client, bot, "chevaux") == [source]
        assert await keyword_hits(client, bot, "cheval") == []  # English does not stem it
    await wait_reindexed(db, bot.id, "french")
    assert await keyword_hits(client, bot, "cheval") == [source]
    assert await reindex_jobs(db, bot.id) == ["succeeded"]


async def test_a_put_that_does_not_change_the_configuration_queues_no_job(client, db):
    bot = await create_bot(client, language="fr")  # a new chatbot is in its language at once
    assert await db.fetchval("SELECT ts_config FROM chatbots WHERE id = $1", bot.id) == "french"
    await put_chatbot(client, bot.id, {**bot.payload, "name": "Renamed"})
    await switch_language(client, bot, "fr")
    assert await reindex_jobs(db, bot.id) == []
    await switch_language(client, bot, "nb")
    await wait_reindexed(db, bot.id, "norwegian")
    await switch_language(client, bot, "no")  # another language with the same configuration
    await switch_language(client, bot, "nn")
    assert await reindex_jobs(db, bot.id) == ["succeeded"]


async def test_two_quick_language_changes_end_in_the_last_one(api, db, db_url, embedder, tmp_path):
    """Both PUTs while no worker runs: one job waits (the queueing lock), and it reads the
    language when it runs, in a worker process of its own (`python -m app.worker`)."""
    from tests.ingestion.test_worker_process import WorkerProcess

    bot = await create_bot(api, language="en")
    [chunk] = await insert_chunks(db, embedder, bot.id, ["Die Krankenhäuser der Stadt wurden renoviert."])
    source = await db.fetchval("SELECT source_id FROM chunks WHERE id = $1", chunk)
    await switch_language(api, bot, "fr")
    await switch_language(api, bot, "de")
    assert await reindex_jobs(db, bot.id) == ["todo"]
    assert await db.fetchval("SELECT ts_config FROM chatbots WHERE id = $1", bot.id) == "english"
    assert await keyword_hits(api, bot, "Krankenhaus") == []
    worker = WorkerProcess(db_url, tmp_path / "worker.log")
    try:
        await wait_reindexed(db, bot.id, "german")
    finally:
        assert worker.stop() == 0
    assert await chunk_configs(db, bot.id) == {"german"}
    assert await keyword_hits(api, bot, "Krankenhaus") == [source]
    assert await reindex_jobs(db, bot.id) == ["succeeded"]


async def test_a_put_during_a_running_reindex_ends_in_its_language(client, db, db_url):
    bot = await create_bot(client, language="en")
    source = await ingest(client, db, bot, "Die Krankenhäuser der Stadt wurden renoviert.")
    async with chunk_writes_held(db_url) as hold:
        await switch_language(client, bot, "fr")
        await until_blocked(db, hold.get_server_pid())  # the French job runs, the chatbot locked
        second = asyncio.create_task(switch_language(client, bot, "de"))
        # The PUT waits for the running job's row lock (the job waits for the held chunks).
        await until(lambda: _at_least(blocked_backends(db), 2), "the second PUT to wait for the job")
        assert not second.done()
    await asyncio.wait_for(second, 60)
    await wait_reindexed(db, bot.id, "german")
    assert await keyword_hits(client, bot, "Krankenhaus") == [source]
    assert await reindex_jobs(db, bot.id) == ["succeeded", "succeeded"]  # French, then German
    assert await db.fetchval("SELECT language FROM chatbots WHERE id = $1", bot.id) == "de"


async def _at_least(count: Awaitable[int], n: int) -> bool:
    return await count >= n


def reindex_outcomes(outcome: str) -> float:
    return REGISTRY.get_sample_value("language_reindex_jobs_total", {"outcome": outcome}) or 0.0


async def test_the_job_of_a_deleted_chatbot_changes_nothing(api, db, db_url, embedder):
    bot = await create_bot(api, language="en")
    await insert_chunks(db, embedder, bot.id, ["Les chevaux galopent."])
    await switch_language(api, bot, "fr")
    r = await send_signed(api, "DELETE", f"/internal/v1/chatbots/{bot.id}", {"version": 100})
    assert r.status_code == 200 and r.json()["applied"], r.text
    assert await reindex_jobs(db, bot.id) == ["todo"]
    before = dict(await db.fetchrow("SELECT * FROM chatbots WHERE id = $1", bot.id))
    deleted = reindex_outcomes("deleted")
    async with running_worker(db_url, embedder):
        await until(lambda: _is_done(db, bot.id), "the deleted chatbot's job")
    assert await reindex_jobs(db, bot.id) == ["succeeded"]
    assert dict(await db.fetchrow("SELECT * FROM chatbots WHERE id = $1", bot.id)) == before
    assert before["deleted"] and before["ts_config"] == "english"
    assert reindex_outcomes("deleted") == deleted + 1
    # and the job of a chatbot that never existed
    pool = await create_pool(make_settings(database_url=db_url), db_url)
    try:
        assert await chatbots_service.reindex_language(pool, uuid.uuid4()) == "deleted"
    finally:
        await pool.close()


async def _is_done(db: asyncpg.Connection, bot_id: uuid.UUID) -> bool:
    return await reindex_jobs(db, bot_id) == ["succeeded"]


@pytest.mark.parametrize("again", ["start-up", "put"])
async def test_a_failed_reindex_keeps_the_language_and_is_queued_again(api, app_factory, db, db_url, embedder, again):
    """Every attempt fails (the chunks' table refuses writes): the job ends failed, the chatbot
    keeps its language and old index; the next start-up, or the chatbot's next PUT (any change),
    queues the job again and it succeeds."""
    bot = await create_bot(api, language="en")
    [chunk] = await insert_chunks(db, embedder, bot.id, ["Les chevaux galopent."])
    source = await db.fetchval("SELECT source_id FROM chunks WHERE id = $1", chunk)
    await switch_language(api, bot, "fr")
    await db.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE 'refused'; END $$;"
        "CREATE TRIGGER refuse BEFORE UPDATE ON chunks FOR EACH STATEMENT EXECUTE FUNCTION refuse()"
    )
    failed = reindex_outcomes("failed")
    settings = make_settings(database_url=db_url, job_max_attempts=1, job_retry_base_seconds=1)
    worker = await app_factory(settings)  # the in-process workers run the job and its retry
    await until(lambda: _statuses(db, bot.id, ["failed"]), "the job to fail for good")
    assert reindex_outcomes("failed") >= failed + 1
    row = await db.fetchrow("SELECT language, ts_config FROM chatbots WHERE id = $1", bot.id)
    assert (row["language"], row["ts_config"]) == ("fr", "english")
    assert await keyword_hits(worker, bot, "chevaux") == [source]  # the old index, whole
    await db.execute("DROP TRIGGER refuse ON chunks")
    if again == "start-up":
        await app_factory(settings)
    else:
        await put_chatbot(worker, bot.id, {**bot.payload, "name": "Renamed"})
    await wait_reindexed(db, bot.id, "french")
    assert await reindex_jobs(db, bot.id) == ["failed", "succeeded"]
    assert await keyword_hits(worker, bot, "cheval") == [source]


async def _statuses(db: asyncpg.Connection, bot_id: uuid.UUID, expected: list[str]) -> bool:
    return await reindex_jobs(db, bot_id) == expected


async def test_chatbots_of_different_languages_never_see_each_others_chunks(client, db):
    french = await create_bot(client, language="fr")
    german = await create_bot(client, language="de")
    fr_source = await ingest(client, db, french, "Les chevaux et les maisons.")
    de_source = await ingest(client, db, german, "Die Pferde und die Häuser.")
    assert await keyword_hits(client, french, "cheval") == [fr_source]
    assert await keyword_hits(client, german, "cheval") == []
    assert await keyword_hits(client, german, "Haus") == [de_source]
    assert await keyword_hits(client, french, "Haus") == []


@pytest.mark.parametrize("language", ["EN", "english", "fr-FR", "", "f", "e1"])
async def test_an_invalid_language_is_refused_and_changes_nothing(client, db, language):
    bot = await create_bot(client, language="fr")
    payload = {**bot.payload, "language": language, "version": 99}
    r = await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot.id}", payload)
    assert r.status_code == 422, r.text
    assert "ISO 639" in r.text
    row = await db.fetchrow("SELECT version, language, ts_config FROM chatbots WHERE id = $1", bot.id)
    assert (row["language"], row["ts_config"]) == ("fr", "french")


async def waiting_for_lock(db: asyncpg.Connection, pid: int) -> bool:
    """Whether some backend waits for a lock that backend `pid` holds."""
    return bool(
        await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
            pid,
        )
    )


async def until_blocked(db: asyncpg.Connection, pid: int, source: uuid.UUID | None = None) -> None:
    """Until a backend waits for a lock `pid` holds; fails if `source` gets ready meanwhile."""
    deadline = time.monotonic() + 120
    while not await waiting_for_lock(db, pid):
        if source is not None:
            state = await db.fetchval("SELECT state FROM sources WHERE id = $1", source)
            assert state != "ready", "the job wrote its chunks while the language change was open"
        assert time.monotonic() < deadline, "nothing came to wait for the lock"
        await asyncio.sleep(0.05)


async def test_a_document_committed_during_a_reindex_is_indexed_in_the_new_language(client, db, db_url):
    """The ingestion job's last step (moving its chunks in) comes while the chatbot's re-index job
    is open: the ingestion waits for it and writes its chunks in the new language, rather than
    writing English chunks the re-index statement did not see."""
    bot = await create_bot(client, language="en")
    hold = await asyncpg.connect(db_url)
    try:
        # Park the ingestion job before its staging writes, so the re-index can open before its commit.
        held = hold.transaction()
        await held.start()
        await hold.execute("LOCK TABLE chunk_staging IN SHARE MODE")
        source = uuid.uuid4()
        r = await put_source(client, bot.id, source, document(1, b"Les chevaux galopent dans le pre.", "p.txt"))
        assert r.status_code == 202, r.text
        await until_blocked(db, hold.get_server_pid())
        async with chunk_writes_held(db_url) as chunks_hold:
            # The re-index job's transaction, held open: chatbot locked, configuration changed,
            # waiting to rewrite the chunks.
            await switch_language(client, bot, "fr")
            await until_blocked(db, chunks_hold.get_server_pid())
            job = await db.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", chunks_hold.get_server_pid()
            )
            await held.commit()
            # The ingestion's commit now waits on the open re-index (were it not to, it would finish).
            await until_blocked(db, job, source)
    finally:
        await hold.close()
    row = await wait_settled(db, source, 1)
    assert row["state"] == "ready", row["error"]
    await wait_reindexed(db, bot.id, "french")
    assert await chunk_configs(db, bot.id) == {"french"}
    assert await keyword_hits(client, bot, "cheval") == [source]


async def test_a_language_change_waits_for_a_commit_in_progress_and_reindexes_its_chunks(client, db, db_url):
    """The other order: chunks are being moved in (the commit holds the chatbot's row shared) when
    the language changes; the PUT (and its re-index job after it) waits, and the re-index covers them."""
    bot = await create_bot(client, language="en")
    source = await ingest(client, db, bot, "Les chevaux galopent.")
    commit = await asyncpg.connect(db_url)
    try:
        tx = commit.transaction()
        await tx.start()
        # what the ingestion commit does first, then an insert of a chunk in the config it read
        config = await ingestion_repository.lock_chatbot_config(commit, bot.id)
        assert config == "english"
        await commit.execute(
            "INSERT INTO chunks (chatbot_id, source_id, source_version, ordinal, content, embedding, ts_config)"
            " SELECT chatbot_id, source_id, source_version, 100, 'Deux chevaux de plus.', embedding, $2"
            " FROM chunks WHERE chatbot_id = $1 LIMIT 1",
            bot.id,
            config,
        )
        put = asyncio.create_task(switch_language(client, bot, "fr"))
        deadline = time.monotonic() + 60
        while not await waiting_for_lock(db, commit.get_server_pid()):
            assert not put.done(), "the language change did not wait for the commit in progress"
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await tx.commit()
        await put
    finally:
        await commit.close()
    await wait_reindexed(db, bot.id, "french")
    assert await chunk_configs(db, bot.id) == {"french"}
    r = await client.post("/v1/search", json={"query": "cheval", "mode": "keyword"}, headers=bot.sk_headers())
    assert {(uuid.UUID(h["source"]), h["content"]) for h in r.json()["results"]} == {
        (source, "Les chevaux galopent."),
        (source, "Deux chevaux de plus."),
    }


async def test_the_migration_keeps_existing_english_chunks_and_reindexes_other_languages(
    pg_cluster, app_factory, embedder, tmp_path
):
    """A database from before per-language search (every chunk indexed 'english'): after the
    migration and the start-up alignment, the English chatbot's chunks (and postings) are as they
    were and still found; a French chatbot's are re-indexed in French."""
    uri = await database_before(pg_cluster, "0301", tmp_path)
    old = await asyncpg.connect(uri)
    bots: dict[str, Bot] = {}
    try:
        await init_connection(old)  # its codecs need the vector type the migrations created
        text = "The horses gallop. Les chevaux galopent."
        [vector] = await embedder.embed([text], purpose="test")
        for language in ("en", "fr"):
            bot_id, sk = uuid.uuid4(), generate_key("secret")
            await old.execute(
                "INSERT INTO chatbots (id, version, name, language) VALUES ($1, 1, 'b', $2)", bot_id, language
            )
            entry = key_entry(sk, "secret")
            await old.execute(
                "INSERT INTO api_keys (id, chatbot_id, kind, prefix, sha256) VALUES ($1, $2, 'secret', $3, $4)",
                uuid.UUID(entry["id"]),
                bot_id,
                entry["prefix"],
                entry["sha256"],
            )
            await old.execute(
                "INSERT INTO chunks (chatbot_id, source_id, source_version, ordinal, content, embedding)"
                " VALUES ($1, $2, 1, 0, $3, $4)",
                bot_id,
                uuid.uuid4(),
                text,
                vector,
            )
            bots[language] = Bot(bot_id, "", sk, {})
        postings_before = await old.fetch(
            "SELECT term, tf, doc_len FROM bm25_postings WHERE chatbot_id = $1 ORDER BY term", bots["en"].id
        )
    finally:
        await old.close()

    client = await app_factory(make_settings(database_url=uri))  # applies 0301, queues the re-index
    db = await asyncpg.connect(uri)
    try:
        await wait_reindexed(db, bots["fr"].id, "french")
        assert await db.fetchval("SELECT count(*) FROM schema_migrations WHERE version = '0301_text_search_languages'")
        assert (
            await db.fetch(
                "SELECT term, tf, doc_len FROM bm25_postings WHERE chatbot_id = $1 ORDER BY term", bots["en"].id
            )
            == postings_before
        )
        assert len(await keyword_hits(client, bots["en"], "horse")) == 1
        assert await keyword_hits(client, bots["en"], "cheval") == []
        assert len(await keyword_hits(client, bots["fr"], "cheval")) == 1  # re-indexed in French by its job
        assert await reindex_jobs(db, bots["fr"].id) == ["succeeded"]
        assert await reindex_jobs(db, bots["en"].id) == []
        configs = await db.fetch("SELECT id, ts_config FROM chatbots")
        assert {r["id"]: r["ts_config"] for r in configs} == {bots["en"].id: "english", bots["fr"].id: "french"}
    finally:
        await db.close()


async def test_start_up_queues_the_reindex_of_a_misaligned_chatbot_and_is_ready_at_once(
    api, app_factory, db, db_url, embedder
):
    """A French chatbot indexed `english` (as before per-language search): the start-up queues its
    re-index and does not wait for it (its chunks are held from writes: an inline re-index would
    block the start-up); searches use the old index until the job commits."""
    bot = await create_bot(api, language="fr")
    [chunk] = await insert_chunks(db, embedder, bot.id, ["Les chevaux galopent."])
    source = await db.fetchval("SELECT source_id FROM chunks WHERE id = $1", chunk)
    await db.execute("UPDATE chatbots SET ts_config = 'english' WHERE id = $1", bot.id)
    assert await chunk_configs(db, bot.id) == {"english"}
    async with chunk_writes_held(db_url) as hold:
        started = await app_factory(make_settings(database_url=db_url))  # waits for its start-up
        assert started.engine.services is not None
        r = await started.get("/readyz")
        assert r.status_code == 200, r.text
        await until_blocked(db, hold.get_server_pid())  # the job runs, parked on the chunks
        assert await reindex_jobs(db, bot.id) == ["doing"]
        assert await keyword_hits(started, bot, "chevaux") == [source]
        assert await keyword_hits(started, bot, "cheval") == []
    await wait_reindexed(db, bot.id, "french")
    assert await keyword_hits(started, bot, "cheval") == [source]
    # the next start finds it aligned: nothing queued
    await app_factory(make_settings(database_url=db_url, workers_in_process=False))
    assert await reindex_jobs(db, bot.id) == ["succeeded"]


@pytest.mark.slow
async def test_a_worker_killed_mid_reindex_is_recovered_and_the_job_completes_once(api, db, db_url, embedder, tmp_path):
    """SIGKILL of the `python -m app.worker` running a re-index: its transaction never commits
    (no half-indexed chatbot), its job is re-queued as stalled, and another worker finishes it."""
    from tests.ingestion.test_worker_process import WorkerProcess

    bot = await create_bot(api, language="en")
    [chunk] = await insert_chunks(db, embedder, bot.id, ["Les chevaux galopent dans la prairie."])
    source = await db.fetchval("SELECT source_id FROM chunks WHERE id = $1", chunk)
    await switch_language(api, bot, "fr")
    async with chunk_writes_held(db_url) as hold:
        first = WorkerProcess(db_url, tmp_path / "w1.log")
        try:
            await until_blocked(db, hold.get_server_pid())  # the job: chatbot locked, at its UPDATE
            assert await reindex_jobs(db, bot.id) == ["doing"]
        finally:
            first.stop(signal.SIGKILL)
        assert first.proc.returncode == -signal.SIGKILL
    # The killed worker's backend wakes up, finds its client gone and rolls back.
    await until(lambda: _rolled_back(db), "the killed worker's transaction to end")
    assert await chunk_configs(db, bot.id) == {"english"}
    assert await reindex_jobs(db, bot.id) == ["doing"]  # until a worker sees it stalled
    second = WorkerProcess(db_url, tmp_path / "w2.log")
    try:
        await wait_reindexed(db, bot.id, "french")
    finally:
        assert second.stop() == 0
    assert await keyword_hits(api, bot, "cheval") == [source]
    job = await db.fetchrow(
        "SELECT id, status::text, attempts FROM procrastinate_jobs WHERE task_name = $1 AND args->>'chatbot' = $2",
        queue.REINDEX_TASK_NAME,
        str(bot.id),
    )
    assert (job["status"], job["attempts"]) == ("succeeded", 2)
    events = await db.fetch("SELECT type::text FROM procrastinate_events WHERE job_id = $1 ORDER BY id", job["id"])
    # Only state transitions: "scheduled" events depend on timing (see test_worker_process.py).
    transitions = [e["type"] for e in events if e["type"] != "scheduled"]
    assert transitions == ["deferred", "started", "deferred_for_retry", "started", "succeeded"]


async def _rolled_back(db: asyncpg.Connection) -> bool:
    """No other backend holds a row lock on chatbots (the killed worker's transaction is over)."""
    held = await db.fetchval(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
        " WHERE c.relname = 'chatbots' AND l.mode = 'RowShareLock' AND l.pid <> pg_backend_pid()"
    )
    return not held
