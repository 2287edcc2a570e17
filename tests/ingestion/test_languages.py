"""Keyword search in the chatbot's language: documents ingested through the internal API (the real
worker, real PostgreSQL text-search configurations), searched through `POST /v1/search` in keyword
mode (BM25 only, so a hit is a stemming match, not the embedding's)."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from typing import Any

import asyncpg
import pytest

from app.chatbots import service as chatbots_service
from app.chatbots.schemas import ChatbotPut
from app.db.migrations import apply_migrations, available_migrations
from app.db.pool import init_connection
from app.ingestion import repository as ingestion_repository
from app.keys.format import generate_key
from app.languages import FALLBACK_CONFIG, TEXT_SEARCH_CONFIGS
from tests.answering.helpers import Bot, create_bot, key_entry, put_chatbot
from tests.conftest import make_settings
from tests.ingestion.helpers import document, put_source, wait_settled
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
    assert await keyword_hits(client, bot, "cheval") == [source]
    rows = await db.fetch("SELECT DISTINCT ts_config FROM chunks WHERE chatbot_id = $1", bot.id)
    assert [r["ts_config"] for r in rows] == ["french"]
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
    assert await keyword_hits(client, bot, "cheval") == []
    assert await keyword_hits(client, bot, "chevaux") == [source]


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


async def test_a_document_committed_during_a_language_change_is_indexed_in_the_new_language(client, db, db_url):
    """The ingestion job's last step (moving its chunks in) runs while a chatbot PUT changing the
    language is open: the job waits for it and writes its chunks in the new language, rather than
    writing English chunks the PUT's re-index statement did not see."""
    bot = await create_bot(client, language="en")
    hold, change = await asyncpg.connect(db_url), await asyncpg.connect(db_url)
    await init_connection(change)
    try:
        # Park the job before its staging writes, so the language change can open before its commit.
        held = hold.transaction()
        await held.start()
        await hold.execute("LOCK TABLE chunk_staging IN SHARE MODE")
        source = uuid.uuid4()
        r = await put_source(client, bot.id, source, document(1, b"Les chevaux galopent dans le pre.", "p.txt"))
        assert r.status_code == 202, r.text
        await until_blocked(db, hold.get_server_pid())
        # The PUT's transaction, held open: chatbot locked, language changed, chunks re-indexed.
        tx = change.transaction()
        await tx.start()
        delivery = ChatbotPut(**{**bot.payload, "language": "fr", "version": 50})
        applied = await chatbots_service.put_chatbot(change, f"msg_{uuid.uuid4().hex}", bot.id, delivery)
        assert applied.applied
        await held.commit()
        # The job's commit now waits on the open PUT (were it not to wait, it would finish).
        await until_blocked(db, change.get_server_pid(), source)
        await tx.commit()
    finally:
        await hold.close()
        await change.close()
    row = await wait_settled(db, source, 1)
    assert row["state"] == "ready", row["error"]
    rows = await db.fetch("SELECT DISTINCT ts_config FROM chunks WHERE chatbot_id = $1", bot.id)
    assert [r["ts_config"] for r in rows] == ["french"]
    assert await keyword_hits(client, bot, "cheval") == [source]


async def test_a_language_change_waits_for_a_commit_in_progress_and_reindexes_its_chunks(client, db, db_url):
    """The other order: chunks are being moved in (the commit holds the chatbot's row shared) when
    the language changes; the PUT waits and its re-index covers them."""
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
    rows = await db.fetch("SELECT DISTINCT ts_config FROM chunks WHERE chatbot_id = $1", bot.id)
    assert [r["ts_config"] for r in rows] == ["french"]
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
    for migration in available_migrations():
        if migration.version < "0301":
            shutil.copy(migration.path, tmp_path / migration.path.name)
    uri = pg_cluster.uri(await pg_cluster.create_database(template=None))
    old = await asyncpg.connect(uri)
    bots: dict[str, Bot] = {}
    try:
        assert "0300_operations" in await apply_migrations(old, tmp_path)
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

    client = await app_factory(make_settings(database_url=uri))  # applies 0301, aligns languages
    db = await asyncpg.connect(uri)
    try:
        assert await db.fetchval("SELECT count(*) FROM schema_migrations WHERE version = '0301_text_search_languages'")
        assert (
            await db.fetch(
                "SELECT term, tf, doc_len FROM bm25_postings WHERE chatbot_id = $1 ORDER BY term", bots["en"].id
            )
            == postings_before
        )
        assert len(await keyword_hits(client, bots["en"], "horse")) == 1
        assert await keyword_hits(client, bots["en"], "cheval") == []
        assert len(await keyword_hits(client, bots["fr"], "cheval")) == 1  # re-indexed in French at start-up
        configs = await db.fetch("SELECT id, ts_config FROM chatbots")
        assert {r["id"]: r["ts_config"] for r in configs} == {bots["en"].id: "english", bots["fr"].id: "french"}
    finally:
        await db.close()
