"""Search latency under load: 100k chunks over 200 chatbots, 32 concurrent clients on /v1/search.

    .venv/bin/python bench/query_latency.py [--chunks 100000] [--chatbots 200] [--clients 32]
        [--requests 4000] [--distinct-queries 400] [--port 8031] [--api-workers 1]

Starts its own PostgreSQL + pgvector (pgserver) and `python -m app` on 127.0.0.1, creates the
chatbots (each with a secret key) through the signed internal API, then bulk-loads the chunks
with COPY straight into `chunks` (the BM25 triggers index them; the HNSW index is rebuilt once
after the load). Texts are synthetic (topic vocabularies with Zipf word frequencies); vectors are
realistic-shaped, not random noise: unit vectors around 2,000 topic centroids. Queries are drawn
from the chunks' own words, asked by 32 concurrent clients over keep-alive connections, bounded by
--requests. Reports p50/p95/p99 of hybrid search, then recall@10 of the engine's dense search
against exact SQL search for the same query vectors. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "fastapi_service"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _common import KeepAliveClient, embedded_database, signed, wait_ready  # noqa: E402

from app.config import DEV_WEBHOOK_SECRET  # noqa: E402
from app.keys.format import generate_key, key_hash  # noqa: E402

SYLLABLES = "ka lo mi ne ru sa ti vo ze pa qui dor len mar tis bel cor fan gil hum".split()


def vocabulary(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(n)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def load_chunks(dsn: str, bots: list[uuid.UUID], total: int, seed: int) -> list[tuple[uuid.UUID, str]]:
    import asyncpg
    from pgvector.asyncpg import register_vector

    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    words = vocabulary(rng, 20_000)
    topics = 2_000
    centroids = nrng.standard_normal((topics, 384)).astype(np.float32)
    topic_words = [rng.sample(words, 60) for _ in range(topics)]
    zipf = np.array([1 / (r + 1) for r in range(60)])
    zipf /= zipf.sum()
    conn = await asyncpg.connect(dsn)
    await register_vector(conn)
    await conn.execute("DROP INDEX IF EXISTS chunks_embedding_hnsw_idx")
    queries: list[tuple[uuid.UUID, str]] = []
    per_bot = total // len(bots)
    started = time.perf_counter()
    for b, bot in enumerate(bots):
        source = uuid.uuid4()
        records = []
        for i in range(per_bot):
            topic = rng.randrange(topics)
            picks = nrng.choice(60, size=rng.randint(60, 160), p=zipf)
            text = " ".join(topic_words[topic][p] for p in picks)
            vector = centroids[topic] + 0.8 * nrng.standard_normal(384).astype(np.float32)
            vector /= np.linalg.norm(vector)
            records.append((bot, source, 1, i, text, vector))
            if i < 3:
                queries.append((bot, " ".join(topic_words[topic][p] for p in picks[:4])))
        await conn.copy_records_to_table(
            "chunks",
            records=records,
            columns=["chatbot_id", "source_id", "source_version", "ordinal", "content", "embedding"],
        )
        if b % 20 == 19:
            print(f"  loaded {(b + 1) * per_bot} chunks ({time.perf_counter() - started:.0f} s)", flush=True)
    t = time.perf_counter()
    await conn.execute("SET maintenance_work_mem = '1GB'")
    await conn.execute("CREATE INDEX chunks_embedding_hnsw_idx ON chunks USING hnsw (embedding vector_cosine_ops)")
    # VACUUM too: a bulk load leaves the visibility map empty (BM25 index-only scans fetch heap
    # rows) and autovacuum would otherwise run during the measurement; production is vacuumed.
    await conn.execute("VACUUM ANALYZE")
    print(f"  HNSW index built and vacuumed in {time.perf_counter() - t:.0f} s", flush=True)
    await conn.close()
    return queries


async def load_test(urls: list[str], keys: dict, queries: list, clients: int, requests: int) -> list[float]:
    """`clients` closed-loop clients; client n talks to API process n mod len(urls)."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))

    async def worker(n: int) -> None:
        nonlocal errors
        rng = random.Random(n)
        address = httpx.URL(urls[n % len(urls)])
        http = KeepAliveClient(address.host, address.port or 80)
        try:
            for _ in counter:
                bot, query = rng.choice(queries)
                started = time.perf_counter()
                status, body = await http.post_json(
                    "/v1/search", {"query": query, "top_k": 10}, {"Authorization": f"Bearer {keys[bot]}"}
                )
                latencies.append((time.perf_counter() - started) * 1000)
                if status != 200 or len(json.loads(body)["results"]) != 10:
                    errors += 1
        finally:
            await http.close()

    started = time.perf_counter()
    cpu = time.process_time()
    await asyncio.gather(*(worker(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    cpu_share = (time.process_time() - cpu) / elapsed
    print(
        f"{len(latencies)} searches in {elapsed:.1f} s = {len(latencies) / elapsed:.0f}/s, {errors} errors "
        f"(load generator: {cpu_share:.0%} of one core; load average {os.getloadavg()[0]:.2f})"
    )
    return latencies


async def recall(url: str, dsn: str, keys: dict, queries: list, n: int) -> float:
    import asyncpg
    from pgvector.asyncpg import register_vector

    from app.embedding.service import EmbeddingService

    embedder = EmbeddingService("sentence-transformers/all-MiniLM-L6-v2")
    embedder.load()
    conn = await asyncpg.connect(dsn)
    await register_vector(conn)
    hits = total = 0
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for bot, query in queries[:n]:
            r = await http.post(
                "/v1/search",
                json={"query": query, "top_k": 10, "mode": "dense"},
                headers={"Authorization": f"Bearer {keys[bot]}"},
            )
            got = {h["chunk_id"] for h in r.json()["results"]}
            vector = embedder.encode([query])[0]
            exact = await conn.fetch(
                "SELECT id FROM chunks WHERE chatbot_id = $1 ORDER BY (embedding <=> $2) + 0 LIMIT 10", bot, vector
            )
            hits += len(got & {row["id"] for row in exact})
            total += len(exact)
    await conn.close()
    return hits / total


async def run(args: argparse.Namespace) -> None:
    state = tempfile.TemporaryDirectory(prefix="bench-latency-")
    server, dsn = await embedded_database(Path(state.name) / "pg")
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(args.port),
        "DATABASE_URL": dsn,
        "WEBHOOK_SECRET": args.secret,
        "LLM_BACKEND": "none",
        "LOG_LEVEL": "WARNING",
        "WORKERS_IN_PROCESS": "false",
        "DB_POOL_MAX": "20",
        "RETRIEVAL_EXACT_MAX_CHUNKS": str(args.exact_max_chunks),
    }
    if args.api_workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        # Each process's model thread would otherwise use every core: N processes x all cores
        # oversubscribe the CPU when unseen questions are encoded (measured: p50 x4).
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // args.api_workers))
    print(f"{args.api_workers} engine process(es), OMP_NUM_THREADS={env.get('OMP_NUM_THREADS', 'unset')}")
    log = open(Path(state.name) / "engine.log", "ab")
    # --api-workers N: N engine processes (replicas behind a client-side balancer), ports port+i.
    ports = [args.port + i for i in range(args.api_workers)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "app"],
            cwd=REPO / "fastapi_service",
            env={**env, "PORT": str(port)},
            stdout=log,
            stderr=log,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    url = urls[0]
    try:
        for each in urls:
            async with httpx.AsyncClient(base_url=each, timeout=60) as client:
                await wait_ready(client)
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            keys: dict[uuid.UUID, str] = {}
            for n in range(args.chatbots):
                bot, key = uuid.uuid4(), generate_key("secret")
                keys[bot] = key
                payload = {
                    "version": 1,
                    "name": f"bench {n}",
                    "api_keys": [
                        {"id": str(uuid.uuid4()), "kind": "secret", "prefix": key[:11], "sha256": key_hash(key)}
                    ],
                    "rate_limits": {"key_per_minute": 100000, "ip_per_minute": 100000},
                }
                (await signed(client, args.secret, "PUT", f"/internal/v1/chatbots/{bot}", payload)).raise_for_status()
        print(f"loading {args.chunks} chunks over {args.chatbots} chatbots", flush=True)
        queries = await load_chunks(dsn, list(keys), args.chunks, seed=11)
        rng = random.Random(5)
        pool = rng.sample(queries, min(args.distinct_queries, len(queries)))
        # Warm-up pass: every distinct query once, at full concurrency (model, caches, and the
        # database pool grown to what 32 clients use: opening connections is not steady state).
        await load_test(urls, keys, pool, args.clients, len(pool))
        latencies = await load_test(urls, keys, pool, args.clients, args.requests)
        print(
            f"hybrid /v1/search, {args.clients} clients: p50 {percentile(latencies, 0.5):.1f} ms, "
            f"p95 {percentile(latencies, 0.95):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms"
        )
        cold = [
            (bot, q + f" {rng.choice(SYLLABLES)}{i}")
            for i, (bot, q) in enumerate(rng.sample(queries, min(300, len(queries))))
        ]
        cold_latencies = await load_test(urls, keys, cold, args.clients, len(cold))
        print(
            f"unseen queries (model runs per request), {args.clients} clients: p50 {percentile(cold_latencies, 0.5):.1f} ms, "
            f"p99 {percentile(cold_latencies, 0.99):.1f} ms"
        )
        r = await recall(url, dsn, keys, pool, 200)
        print(f"recall@10 of dense /v1/search vs exact SQL: {r:.4f}")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)
        server.cleanup()
        state.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--chatbots", type=int, default=200)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--distinct-queries", type=int, default=400)
    parser.add_argument("--secret", default=os.environ.get("WEBHOOK_SECRET", DEV_WEBHOOK_SECRET))
    parser.add_argument("--port", type=int, default=8031)
    parser.add_argument("--api-workers", type=int, default=1, help="engine processes, on ports --port, --port + 1, ...")
    parser.add_argument(
        "--exact-max-chunks", type=int, default=10_000, help="engine's RETRIEVAL_EXACT_MAX_CHUNKS (0 = always HNSW)"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
