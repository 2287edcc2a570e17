"""Search latency and CPU per search under load, closed loop and open loop (Poisson arrivals).

    .venv/bin/python bench/query_latency.py [--chunks 100000] [--chatbots 200] [--clients 32]
        [--requests 4000] [--distinct-queries 400] [--port 8031] [--api-workers 1] [--open-loop]
        [--vector-cache-mb 256 | 0,256,...] [--engine-tree BEFORE/fastapi_service,fastapi_service,...]
    .venv/bin/python bench/query_latency.py --scifact [../shared/data/scifact] --open-loop  # one chatbot

Starts its own PostgreSQL + pgvector (pgserver) and `python -m app` on 127.0.0.1, creates the
chatbots (each with a secret key) through the signed internal API, then bulk-loads the chunks
with COPY straight into `chunks` (the BM25 triggers index them; the HNSW index is rebuilt once
after the load).

Corpora: synthetic (default: --chunks over --chatbots; topic vocabularies with Zipf word
frequencies; unit vectors around 2,000 topic centroids; queries drawn from the chunks' own words),
or --scifact: the BEIR SciFact corpus (title + abstract, cut by the engine's own chunker and
embedded with the engine's model) in ONE chatbot, asked its 300 test queries. Path: the argument,
else $SCIFACT_DIR, else ../shared/data/scifact.

Phases, each bounded by a request count: repeated questions (every distinct query asked once
before: its vector is cached) and unseen questions (a word no query had before appended: the
model runs), first closed loop (--clients concurrent clients over keep-alive connections: the
capacity), then with --open-loop at 50 % and 80 % of that capacity with Poisson arrivals, where a
request's latency runs from its scheduled arrival (a late server cannot hide queueing: no
coordinated omission). Every phase reports p50/p99 and the CPU per search of the engine
process(es) and of PostgreSQL (all its processes), from /proc via psutil. Last, recall@10 of the
engine's dense search against exact SQL search. With several --vector-cache-mb values or
--engine-tree source trees the engine is started once per (tree, value), on the same data, and
every phase is run again. Loopback only.
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


class CpuMeter:
    """CPU seconds (user + system) used by the engine processes and by PostgreSQL (the postmaster
    and its backends) since the last `take()`."""

    def __init__(self, api_pids: list[int], postmaster: int) -> None:
        import psutil

        self.api = [psutil.Process(pid) for pid in api_pids]
        self.pg = psutil.Process(postmaster)
        self.last = self.read()

    @staticmethod
    def _seconds(procs: list) -> float:
        import psutil

        total = 0.0
        for proc in procs:
            for each in [proc, *proc.children(recursive=True)]:
                try:
                    t = each.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                total += t.user + t.system
        return total

    def read(self) -> tuple[float, float]:
        return self._seconds(self.api), self._seconds([self.pg])

    def take(self) -> tuple[float, float]:
        now = self.read()
        used = (now[0] - self.last[0], now[1] - self.last[1])
        self.last = now
        return used


def report(label: str, latencies: list[float], elapsed: float, errors: int, cpu: tuple[float, float]) -> float:
    n = max(1, len(latencies))
    rate = len(latencies) / elapsed
    print(
        f"{label}: {len(latencies)} searches in {elapsed:.1f} s = {rate:.0f}/s, {errors} errors; "
        f"p50 {percentile(latencies, 0.5):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms; "
        f"CPU per search: engine {cpu[0] * 1000 / n:.2f} ms, PostgreSQL {cpu[1] * 1000 / n:.2f} ms "
        f"(load average {os.getloadavg()[0]:.2f})",
        flush=True,
    )
    return rate


async def search(http: KeepAliveClient, keys: dict, bot: uuid.UUID, query: str) -> bool:
    status, body = await http.post_json(
        "/v1/search", {"query": query, "top_k": 10}, {"Authorization": f"Bearer {keys[bot]}"}
    )
    return status == 200 and len(json.loads(body)["results"]) == 10


async def closed_loop(
    urls: list[str], keys: dict, queries: list, clients: int, requests: int
) -> tuple[list[float], float, int]:
    """`clients` clients, each sending its next request when the last is answered; client n talks
    to API process n mod len(urls). Queries are taken in order (cycled)."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))

    async def worker(n: int) -> None:
        nonlocal errors
        address = httpx.URL(urls[n % len(urls)])
        http = KeepAliveClient(address.host, address.port or 80)
        try:
            for i in counter:
                bot, query = queries[i % len(queries)]
                started = time.perf_counter()
                ok = await search(http, keys, bot, query)
                latencies.append((time.perf_counter() - started) * 1000)
                errors += not ok
        finally:
            await http.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(clients)))
    return latencies, time.perf_counter() - started, errors


async def open_loop(
    urls: list[str], keys: dict, queries: list, rate: float, requests: int, connections: int, seed: int
) -> tuple[list[float], float, int]:
    """Poisson arrivals at `rate`/s: request i is due at the sum of i exponential gaps and is sent
    on the first free connection (of `connections`, spread over the API processes); its latency
    runs from when it was due, so time spent waiting for a free connection counts."""
    rng = random.Random(seed)
    due: asyncio.Queue[tuple[float, uuid.UUID, str] | None] = asyncio.Queue()
    latencies: list[float] = []
    errors = 0

    async def sender(n: int) -> None:
        nonlocal errors
        address = httpx.URL(urls[n % len(urls)])
        http = KeepAliveClient(address.host, address.port or 80)
        try:
            while (item := await due.get()) is not None:
                at, bot, query = item
                ok = await search(http, keys, bot, query)
                latencies.append((time.perf_counter() - at) * 1000)
                errors += not ok
        finally:
            await http.close()

    senders = [asyncio.create_task(sender(n)) for n in range(connections)]
    started = time.perf_counter()
    at = started
    for i in range(requests):
        at += rng.expovariate(rate)
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        bot, query = queries[i % len(queries)]
        due.put_nowait((at, bot, query))
    for _ in senders:
        due.put_nowait(None)
    await asyncio.gather(*senders)
    return latencies, time.perf_counter() - started, errors


def unseen(queries: list, count: int, tag: str, rng: random.Random) -> list[tuple[uuid.UUID, str]]:
    """`count` questions no one asked before: a query with a new word appended (`tag` keeps the
    words of two phases apart), so every one misses the engine's query-vector cache."""
    return [(bot, f"{q} {rng.choice(SYLLABLES)}{tag}{i}") for i, (bot, q) in enumerate(rng.choices(queries, k=count))]


async def recall(url: str, dsn: str, keys: dict, queries: list, n: int) -> float:
    import asyncpg
    from pgvector.asyncpg import register_vector

    from app.config import Settings
    from app.embedding.service import EmbeddingService

    embedder = EmbeddingService.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]  # the engine's backend
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


async def load_scifact_chunks(dsn: str, bot: uuid.UUID, data: Path) -> list[tuple[uuid.UUID, str]]:
    """SciFact's documents (title + abstract) cut by the engine's chunker at its default size and
    embedded with its model, COPYed into one chatbot; its test queries are the questions."""
    import asyncpg
    from pgvector.asyncpg import register_vector
    from retrieval_scifact import load_scifact

    from app.config import Settings
    from app.embedding.service import EmbeddingService
    from app.extraction.extractors import Block, PageText
    from app.ingestion.chunking import chunk_pages

    corpus, queries, _ = load_scifact(data, None)
    defaults = Settings.model_fields
    embedder = EmbeddingService.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]  # the engine's backend
    embedder.load()
    started = time.perf_counter()
    records = []
    for doc in corpus:
        page = PageText([Block(doc["text"].strip(), heading=doc.get("title") or None)], title=doc.get("title") or None)
        chunks = chunk_pages(
            [page], embedder.tokenizer, defaults["chunk_tokens"].default, defaults["chunk_overlap_tokens"].default
        )
        source = uuid.uuid5(uuid.NAMESPACE_URL, f"scifact:{doc['_id']}")
        records += [(bot, source, 1, i, chunk.text) for i, chunk in enumerate(chunks)]
    vectors = await embedder.embed([record[4] for record in records], "bench")  # every model thread
    print(f"  embedded {len(records)} chunks ({time.perf_counter() - started:.0f} s)", flush=True)
    embedder.close()
    conn = await asyncpg.connect(dsn)
    await register_vector(conn)
    await conn.copy_records_to_table(
        "chunks",
        records=[(*r, v) for r, v in zip(records, vectors, strict=True)],
        columns=["chatbot_id", "source_id", "source_version", "ordinal", "content", "embedding"],
    )
    await conn.execute("VACUUM ANALYZE")
    await conn.close()
    print(f"  {len(corpus)} SciFact documents: {len(records)} chunks in one chatbot", flush=True)
    return [(bot, q) for q in queries.values()]


async def create_chatbots(url: str, secret: str, count: int) -> dict[uuid.UUID, str]:
    keys: dict[uuid.UUID, str] = {}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for n in range(count):
            bot, key = uuid.uuid4(), generate_key("secret")
            keys[bot] = key
            payload = {
                "version": 1,
                "name": f"bench {n}",
                "api_keys": [{"id": str(uuid.uuid4()), "kind": "secret", "prefix": key[:11], "sha256": key_hash(key)}],
                "rate_limits": {"key_per_minute": 100000, "ip_per_minute": 100000},
            }
            (await signed(client, secret, "PUT", f"/internal/v1/chatbots/{bot}", payload)).raise_for_status()
    return keys


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
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        keys: dict[uuid.UUID, str] = {}
        queries: list[tuple[uuid.UUID, str]] = []
        # one engine start per tree and value, on the same data
        for tree, cache_mb in [(tree, mb) for tree in args.engine_tree for mb in args.vector_cache_mb]:
            procs = [
                subprocess.Popen(
                    [sys.executable, "-m", "app"],
                    cwd=tree,
                    env={**env, "PORT": str(port), "RETRIEVAL_VECTOR_CACHE_MB": str(cache_mb)},
                    stdout=log,
                    stderr=log,
                )
                for port in ports
            ]
            for each in urls:
                async with httpx.AsyncClient(base_url=each, timeout=60) as client:
                    await wait_ready(client)
            if not keys and args.scifact:
                keys = await create_chatbots(urls[0], args.secret, 1)
                print(f"loading SciFact from {args.scifact}", flush=True)
                queries = await load_scifact_chunks(dsn, next(iter(keys)), Path(args.scifact))
            elif not keys:
                keys = await create_chatbots(urls[0], args.secret, args.chatbots)
                print(f"loading {args.chunks} chunks over {args.chatbots} chatbots", flush=True)
                queries = await load_chunks(dsn, list(keys), args.chunks, seed=11)
            print(f"== engine {tree}, RETRIEVAL_VECTOR_CACHE_MB={cache_mb}", flush=True)
            await phases(args, urls, dsn, keys, queries, CpuMeter([p.pid for p in procs], server.get_pid()))
            stop(procs)
            procs = []
    finally:
        stop(procs)
        server.cleanup()
        state.cleanup()


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(60)


async def phases(
    args: argparse.Namespace,
    urls: list[str],
    dsn: str,
    keys: dict[uuid.UUID, str],
    queries: list[tuple[uuid.UUID, str]],
    meter: CpuMeter,
) -> None:
    """Warm-up, closed loop, open loop, recall: the same questions for every engine start."""
    rng = random.Random(5)
    pool = rng.sample(queries, min(args.distinct_queries, len(queries)))
    # Warm-up pass: every distinct query once, at full concurrency (model, caches, and the
    # database pool grown to what the clients use: opening connections is not steady state).
    await closed_loop(urls, keys, pool, args.clients, len(pool))
    meter.take()
    repeated = rng.choices(pool, k=args.requests)
    fresh = unseen(queries, args.unseen_requests, "c", rng)
    result = await closed_loop(urls, keys, repeated, args.clients, args.requests)
    capacity = {"repeated": report(f"repeated questions, {args.clients} clients", *result, meter.take())}
    result = await closed_loop(urls, keys, fresh, args.clients, len(fresh))
    capacity["unseen"] = report(f"unseen questions, {args.clients} clients", *result, meter.take())
    if args.open_loop:
        for kind in ("repeated", "unseen"):
            for share in (0.5, 0.8):
                rate = capacity[kind] * share
                count = min(args.requests if kind == "repeated" else args.unseen_requests, int(rate * 60))
                asked = rng.choices(pool, k=count) if kind == "repeated" else unseen(queries, count, f"o{share}", rng)
                result = await open_loop(urls, keys, asked, rate, count, args.connections, seed=int(share * 10))
                report(f"open loop, {kind}, {share:.0%} of capacity ({rate:.0f}/s)", *result, meter.take())
    r = await recall(urls[0], dsn, keys, pool, 200)
    print(f"recall@10 of dense /v1/search vs exact SQL: {r:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--chatbots", type=int, default=200)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=4000, help="repeated questions per phase")
    parser.add_argument("--unseen-requests", type=int, default=600, help="unseen questions per phase")
    parser.add_argument("--open-loop", action="store_true", help="also Poisson arrivals at 50%% and 80%% of capacity")
    parser.add_argument("--connections", type=int, default=64, help="open loop: keep-alive connections")
    parser.add_argument(
        "--scifact",
        nargs="?",
        const=os.environ.get("SCIFACT_DIR", str(REPO.parent / "shared" / "data" / "scifact")),
        help="one chatbot of the SciFact corpus instead of the synthetic chatbots",
    )
    parser.add_argument("--distinct-queries", type=int, default=400)
    parser.add_argument("--secret", default=os.environ.get("WEBHOOK_SECRET", DEV_WEBHOOK_SECRET))
    parser.add_argument("--port", type=int, default=8031)
    parser.add_argument("--api-workers", type=int, default=1, help="engine processes, on ports --port, --port + 1, ...")
    parser.add_argument(
        "--exact-max-chunks", type=int, default=10_000, help="engine's RETRIEVAL_EXACT_MAX_CHUNKS (0 = always HNSW)"
    )
    parser.add_argument(
        "--vector-cache-mb",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[256],
        help="engine's RETRIEVAL_VECTOR_CACHE_MB; several (0,256,0,256): one engine start each, same data",
    )
    parser.add_argument(
        "--engine-tree",
        type=lambda text: [Path(part).resolve() for part in text.split(",")],
        default=[REPO / "fastapi_service"],
        help="engine source trees (before,after,...: e.g. a `git archive` of the base commit's fastapi_service); "
        "one engine start each, same data and database (their migrations must match)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
