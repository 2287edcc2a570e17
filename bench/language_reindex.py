"""Cost of changing a chatbot's language: the background job `reindex_chatbot` re-indexes its chunks.

    .venv/bin/python bench/language_reindex.py [--chunks 20000] [--words 150]

A throw-away embedded PostgreSQL with the engine's migrations; one chatbot gets `--chunks` chunks of
`--words` random French-looking words (random unit vectors: the embedding plays no part), indexed
`english`; then the same statement a language change's job runs (chatbots/repository.reindex_chunks,
under the chatbot's row lock, as `chatbots.service.reindex_language` does) moves them to `french`,
and back, timed. The PUT itself only queues the job: this is how long the job holds the chatbot row.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "fastapi_service"))

from _common import embedded_database  # noqa: E402

from app.chatbots import repository  # noqa: E402
from app.db.migrations import apply_migrations  # noqa: E402
from app.db.pool import init_connection  # noqa: E402

WORDS = "cheval chevaux maison maisons garantie livraison commande retour produit prix client service".split()


async def run(chunks: int, words: int) -> None:
    import asyncpg

    with tempfile.TemporaryDirectory(prefix="bench-lang-") as tmp:
        server, dsn = await embedded_database(Path(tmp) / "pg")
        try:
            conn = await asyncpg.connect(dsn)
            await apply_migrations(conn)
            await init_connection(conn)
            bot = uuid.uuid4()
            await conn.execute("INSERT INTO chatbots (id, version, name, language) VALUES ($1, 1, 'b', 'en')", bot)
            rng = random.Random(0)
            rows = []
            for i in range(chunks):
                vector = np.random.default_rng(i).standard_normal(384).astype(np.float32)
                text = " ".join(rng.choice(WORDS) + rng.choice(["", "s", "ent", "er"]) for _ in range(words))
                rows.append((bot, uuid.uuid4(), 1, 0, text, vector / np.linalg.norm(vector)))
            await conn.copy_records_to_table(
                "chunks",
                records=rows,
                columns=["chatbot_id", "source_id", "source_version", "ordinal", "content", "embedding"],
            )
            postings = await conn.fetchval("SELECT count(*) FROM bm25_postings WHERE chatbot_id = $1", bot)
            print(f"{chunks} chunks x {words} words, {postings} postings")
            for config in ("french", "english"):
                started = time.perf_counter()
                async with conn.transaction():
                    await repository.lock_chatbot(conn, bot)
                    moved = await repository.reindex_chunks(conn, bot, config)
                print(f"re-index to {config}: {moved} chunks in {time.perf_counter() - started:.1f} s")
            await conn.close()
        finally:
            server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--words", type=int, default=150)
    args = parser.parse_args()
    asyncio.run(run(args.chunks, args.words))


if __name__ == "__main__":
    main()
