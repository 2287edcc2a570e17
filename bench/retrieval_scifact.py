"""SciFact retrieval quality through the real engine: nDCG@10 for hybrid, dense-only and keyword-only.

    .venv/bin/python bench/retrieval_scifact.py [--data ../shared/data/scifact] [--max-docs N]
    .venv/bin/python bench/retrieval_scifact.py --url http://127.0.0.1:8000 --secret whsec_...  # running engine

Without --url it starts `python -m app` on 127.0.0.1 with an embedded database in a temporary state
directory. It creates a chatbot with a secret key through the signed internal API, ingests every
SciFact document (title + abstract, as a .txt source) through signed source PUTs, waits until all are
`ready`, then asks all test queries through `POST /v1/search` with `mode` = hybrid, dense and keyword.
Chunks map back to their document; a document's rank is that of its best chunk. Loopback only.

--direct skips the ingestion pipeline (which runs at a few documents per second on 2 shared cores):
each document (title + abstract) becomes one chunk, embedded here with the same model (truncated at
its 256-token limit, as in BEIR) and INSERTed into `chunks` exactly as the ingestion job's last step
does — the BM25 triggers index it. Queries still go through `POST /v1/search`.

--chunked measures contextual chunks (CONTEXTUAL_CHUNKS) without the pipeline's hours: each document
(title line + abstract, as the pipeline's .txt gives it, with its title known as a PDF, DOCX, HTML or
Markdown document's is) is cut by the engine's own chunker twice, into two chatbots of the same run:
plain chunks, and contextual chunks embedded (and keyword-indexed: `chunks.context`) with the title
in front. Both are embedded here with the engine's model, INSERTed as the ingestion job does, and
asked the same queries.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "fastapi_service"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _common import embedded_database, signed, wait_ready  # noqa: E402

from app.config import DEV_WEBHOOK_SECRET  # noqa: E402
from app.keys.format import generate_key, key_hash  # noqa: E402

MODES = ("hybrid", "dense", "keyword")


def load_scifact(data: Path, max_docs: int | None) -> tuple[list[dict], dict[str, str], dict[str, dict[str, int]]]:
    qrels: dict[str, dict[str, int]] = {}
    for line in (data / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, doc, score = line.split("\t")
        qrels.setdefault(qid, {})[doc] = int(score)
    corpus = [json.loads(line) for line in (data / "corpus.jsonl").read_text().splitlines() if line.strip()]
    if max_docs:
        relevant = {d for rel in qrels.values() for d in rel}
        keep = [d for d in corpus if d["_id"] in relevant]
        keep += [d for d in corpus if d["_id"] not in relevant][: max(0, max_docs - len(keep))]
        corpus = keep
    queries = {}
    for line in (data / "queries.jsonl").read_text().splitlines():
        if line.strip():
            q = json.loads(line)
            if q["_id"] in qrels:
                queries[q["_id"]] = q["text"]
    return corpus, queries, qrels


def ndcg_at_10(ranked: list[str], relevant: dict[str, int]) -> float:
    dcg = sum((2 ** relevant.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


async def ingest(client: httpx.AsyncClient, secret: str, bot: uuid.UUID, corpus: list[dict], timeout: float) -> dict:
    sources: dict[str, str] = {}  # source uuid -> doc id
    sem = asyncio.Semaphore(8)

    async def put(doc: dict) -> None:
        source = str(uuid.uuid5(uuid.NAMESPACE_URL, f"scifact:{doc['_id']}"))
        sources[source] = doc["_id"]
        data = f"{doc.get('title', '').strip()}\n\n{doc['text'].strip()}\n".encode()
        payload = {
            "version": 1,
            "kind": "document",
            "name": doc["_id"],
            "document": {
                "filename": f"{doc['_id']}.txt",
                "mimetype": "text/plain",
                "sha256": hashlib.sha256(data).hexdigest(),
                "content_base64": base64.b64encode(data).decode(),
            },
        }
        async with sem:
            r = await signed(client, secret, "PUT", f"/internal/v1/chatbots/{bot}/sources/{source}", payload)
        if r.status_code not in (200, 202):
            raise RuntimeError(f"PUT source failed: {r.status_code} {r.text}")

    started = time.perf_counter()
    await asyncio.gather(*(put(d) for d in corpus))
    print(f"queued {len(corpus)} documents in {time.perf_counter() - started:.0f} s", flush=True)
    last = -1
    while True:
        listed = (await signed(client, secret, "GET", f"/internal/v1/chatbots/{bot}/sources", None)).json()
        done = [s for s in listed if s["state"] in ("ready", "failed")]
        if len(done) != last and len(done) % 250 < 50:
            print(f"  {len(done)}/{len(corpus)} sources done after {time.perf_counter() - started:.0f} s", flush=True)
        last = len(done)
        if len(done) == len(corpus):
            break
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"only {len(done)}/{len(corpus)} sources done after {timeout}s")
        await asyncio.sleep(2)
    failed = [s for s in listed if s["state"] == "failed"]
    chunks = sum(s["chunks"] for s in listed)
    print(
        f"ingested {len(corpus)} documents ({chunks} chunks, {len(failed)} failed) in "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return sources


def bench_embedder():
    """The engine's model with the backend the started engine uses (EMBEDDING_BACKEND or its default)."""
    from app.config import Settings
    from app.embedding.service import EmbeddingService

    default = Settings.model_fields["embedding_backend"].default
    return EmbeddingService(
        "sentence-transformers/all-MiniLM-L6-v2", batch_size=32, backend=os.environ.get("EMBEDDING_BACKEND", default)
    )


async def insert_direct(dsn: str, bot: uuid.UUID, corpus: list[dict]) -> dict:
    import asyncpg
    from pgvector.asyncpg import register_vector

    embedder = bench_embedder()
    embedder.load()
    texts = [f"{d.get('title', '').strip()}\n\n{d['text'].strip()}" for d in corpus]
    started = time.perf_counter()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch faster
    vectors: list = [None] * len(texts)
    for n in range(0, len(order), 256):
        batch = order[n : n + 256]
        for i, v in zip(batch, embedder.encode([texts[i] for i in batch], purpose="bench"), strict=True):
            vectors[i] = v
        print(f"  embedded {min(n + 256, len(order))}/{len(order)} ({time.perf_counter() - started:.0f} s)", flush=True)
    conn = await asyncpg.connect(dsn)
    await register_vector(conn)
    sources: dict[str, str] = {}
    records = []
    for doc, text, vector in zip(corpus, texts, vectors, strict=True):
        source = uuid.uuid5(uuid.NAMESPACE_URL, f"scifact:{doc['_id']}")
        sources[str(source)] = doc["_id"]
        records.append((bot, source, 1, 0, text, vector))
    await conn.copy_records_to_table(
        "chunks",
        records=records,
        columns=["chatbot_id", "source_id", "source_version", "ordinal", "content", "embedding"],
    )
    await conn.execute("ANALYZE")
    await conn.close()
    print(f"inserted {len(records)} chunks directly in {time.perf_counter() - started:.0f} s", flush=True)
    return sources


async def insert_chunked(dsn: str, bots: dict[bool, uuid.UUID], corpus: list[dict]) -> dict:
    """The engine's chunker over every document, into bots[False] (plain) and bots[True] (contextual)."""
    import asyncpg
    from pgvector.asyncpg import register_vector

    from app.config import Settings
    from app.extraction.extractors import Block, PageText
    from app.ingestion.chunking import chunk_pages

    size = Settings.model_fields["chunk_tokens"].default
    overlap = Settings.model_fields["chunk_overlap_tokens"].default
    embedder = bench_embedder()
    embedder.load()
    started = time.perf_counter()
    sources: dict[str, str] = {}
    conn = await asyncpg.connect(dsn)
    await register_vector(conn)
    for contextual, bot in bots.items():
        rows = []
        for doc in corpus:
            title = doc.get("title", "").strip()
            page = PageText([Block(f"{title}\n\n{doc['text'].strip()}")], title or None)
            source = uuid.uuid5(uuid.NAMESPACE_URL, f"scifact:{contextual}:{doc['_id']}")  # one per chatbot
            sources[str(source)] = doc["_id"]
            for i, chunk in enumerate(chunk_pages([page], embedder.tokenizer, size, overlap, contextual)):
                rows.append((bot, source, 1, i, chunk.text, chunk.context, chunk.embedded_text))
        order = sorted(range(len(rows)), key=lambda i: len(rows[i][6]))
        vectors: list = [None] * len(rows)
        for n in range(0, len(order), 512):
            batch = order[n : n + 512]
            for i, v in zip(batch, embedder.encode([rows[i][6] for i in batch], purpose="bench"), strict=True):
                vectors[i] = v
        await conn.copy_records_to_table(  # with its context, which the keyword index reads too
            "chunks",
            records=[(*row[:6], v) for row, v in zip(rows, vectors, strict=True)],
            columns=["chatbot_id", "source_id", "source_version", "ordinal", "content", "context", "embedding"],
        )
        label = "contextual" if contextual else "plain"
        print(f"{label}: {len(rows)} chunks embedded and inserted ({time.perf_counter() - started:.0f} s)", flush=True)
    await conn.execute("ANALYZE")
    await conn.close()
    embedder.close()
    return sources


async def evaluate(client: httpx.AsyncClient, key: str, sources: dict, queries: dict, qrels: dict) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {key}"}
    scores: dict[str, list[float]] = {m: [] for m in MODES}
    for qid, text in queries.items():
        for mode in MODES:
            r = await client.post("/v1/search", json={"query": text, "top_k": 40, "mode": mode}, headers=headers)
            r.raise_for_status()
            ranked: list[str] = []
            for hit in r.json()["results"]:
                doc = sources.get(str(hit["source"]))
                if doc is not None and doc not in ranked:
                    ranked.append(doc)
            scores[mode].append(ndcg_at_10(ranked, qrels[qid]))
    return {m: 100 * sum(v) / len(v) for m, v in scores.items()}


def start_engine(port: int, state_dir: str, secret: str, database_url: str | None) -> subprocess.Popen:
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "STATE_DIR": state_dir,
        "WEBHOOK_SECRET": secret,
        "LLM_BACKEND": "none",
        "LOG_LEVEL": "WARNING",
        "ODOO_URL": "",
        "DB_POOL_MAX": "20",
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    log = open(Path(state_dir) / "engine.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "app"], cwd=REPO / "fastapi_service", env=env, stdout=log, stderr=log
    )


async def run(args: argparse.Namespace) -> None:
    data = Path(args.data or os.environ.get("SCIFACT_DIR") or REPO.parent / "shared" / "data" / "scifact")
    corpus, queries, qrels = load_scifact(data, args.max_docs)
    print(f"SciFact: {len(corpus)} documents, {len(queries)} test queries", flush=True)
    proc = None
    url = args.url
    state = tempfile.TemporaryDirectory(prefix="bench-scifact-")
    dsn = args.database_url
    server = None
    if args.chunked:
        args.direct = True  # the same database set-up: chunks are inserted here
    if args.direct and not dsn:
        server, dsn = await embedded_database(Path(state.name) / "pg")
    if args.direct and args.url and not args.database_url:
        raise SystemExit("--direct with --url needs --database-url (the engine's database)")
    if not url:
        proc = start_engine(args.port, state.name, args.secret, dsn)
        url = f"http://127.0.0.1:{args.port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            await wait_ready(client)
            variants = [False, True] if args.chunked else [None]
            bots: dict = {}
            for variant in variants:
                bot, key = uuid.uuid4(), generate_key("secret")
                bots[variant] = (bot, key)
                chatbot = {
                    "version": 1,
                    "tenant": "bench",
                    "name": "SciFact",
                    "api_keys": [
                        {"id": str(uuid.uuid4()), "kind": "secret", "prefix": key[:11], "sha256": key_hash(key)}
                    ],
                    "rate_limits": {"key_per_minute": 100000, "ip_per_minute": 100000},
                }
                r = await signed(client, args.secret, "PUT", f"/internal/v1/chatbots/{bot}", chatbot)
                r.raise_for_status()
            if args.chunked:
                sources = await insert_chunked(dsn, {v: b for v, (b, _) in bots.items()}, corpus)
            elif args.direct:
                sources = await insert_direct(dsn, bots[None][0], corpus)
            else:
                sources = await ingest(client, args.secret, bots[None][0], corpus, args.timeout)
            for variant, (_, key) in bots.items():
                started = time.perf_counter()
                results = await evaluate(client, key, sources, queries, qrels)
                label = {None: "", False: "plain chunks: ", True: "contextual chunks: "}[variant]
                print(f"evaluated {len(queries)} queries x {len(MODES)} modes in {time.perf_counter() - started:.0f} s")
                print(f"{label}nDCG@10  " + "  ".join(f"{m}: {v:.1f}" for m, v in results.items()), flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(60)
        if server is not None:
            server.cleanup()
        state.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="SciFact directory (corpus.jsonl, queries.jsonl, qrels/test.tsv)")
    parser.add_argument("--max-docs", type=int, help="subset: every relevant document plus others up to N")
    parser.add_argument("--url", help="target a running engine instead of starting one")
    parser.add_argument("--secret", default=os.environ.get("WEBHOOK_SECRET", DEV_WEBHOOK_SECRET))
    parser.add_argument("--database-url", help="database for the started engine (default: embedded, temporary)")
    parser.add_argument("--port", type=int, default=8021)
    parser.add_argument("--timeout", type=float, default=5400)
    parser.add_argument("--direct", action="store_true", help="insert embedded chunks instead of ingesting")
    parser.add_argument("--chunked", action="store_true", help="plain vs contextual chunks, inserted (see above)")
    parser.add_argument(
        "--backend",
        choices=["torch", "onnx", "onnx-int8"],
        help="EMBEDDING_BACKEND of the started engine and of the documents --direct/--chunked embed (default: the engine's)",
    )
    args = parser.parse_args()
    if args.backend:  # the started engine inherits the environment
        os.environ["EMBEDDING_BACKEND"] = args.backend
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
