"""Ingestion throughput of the whole pipeline vs bare `model.encode`, and /healthz p99 meanwhile.

    .venv/bin/python bench/ingest.py [--docs 24] [--words 4000] [--port 8012]
    .venv/bin/python bench/ingest.py --url http://127.0.0.1:8000 --secret whsec_...   # a running engine

Without --url it starts `python -m app` on 127.0.0.1 with an embedded database in a temporary
state directory (or --database-url). It generates N real documents (PDF via fpdf2, DOCX via
python-docx, TXT, in turn), PUTs them through the signed internal API and polls the source list
until all are ready: pipeline chunks/s = chunks / wall time from the first PUT to the last ready
(extraction in the sandbox, chunking, embedding, indexing, callbacks off). Meanwhile it requests
/healthz every --probe-interval seconds (0.1) and reports p50/p99. Then, in this process, it re-creates the same chunks
with the engine's own (deterministic) extractor and chunker and times, with the engine stopped:

- bare `model.encode(chunks, batch_size=B)` with torch using every core, for each B in
  --bare-batch-sizes; the fastest B is the reference (the target is pipeline / this >= 0.90);
- the engine's encoder alone (`EmbeddingService.embed`: one single-threaded model thread per core,
  batches of EMBEDDING_BATCH_SIZE), which shows what the rest of the pipeline costs.

Both are timed before and after the ingest and the faster time is used, so drift on a shared
machine can only lower the reported ratios. Loopback only; bounded by --docs/--words.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import statistics
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

from _common import KeepAliveClient, signed  # noqa: E402

from app.config import DEV_WEBHOOK_SECRET  # noqa: E402

WORDS = (
    "invoice shipping refund warranty battery charger keyboard monitor cable adapter account password "
    "delivery return policy customer support order tracking payment card subscription upgrade license "
    "install update driver firmware network router printer scanner laptop desktop tablet phone screen"
).split()


def prose(words: int, seed: int) -> str:
    rng = random.Random(seed)
    out, n = [], 0
    while n < words:
        k = rng.randint(6, 18)
        out.append(" ".join(rng.choice(WORDS) for _ in range(k)).capitalize() + ".")
        n += k
    return "\n\n".join(" ".join(out[i : i + 5]) for i in range(0, len(out), 5))


def make_document(i: int, words: int) -> tuple[bytes, str]:
    text = prose(words, seed=i)
    if i % 3 == 0:
        from fpdf import FPDF

        pdf = FPDF()
        pdf.set_font("helvetica", size=10)
        for part in text.split("\n\n"):
            if pdf.page_no() == 0 or pdf.get_y() > 250:
                pdf.add_page()
            pdf.multi_cell(0, 5, part, new_x="LMARGIN", new_y="NEXT")
        return bytes(pdf.output()), f"doc{i}.pdf"
    if i % 3 == 1:
        import docx

        document = docx.Document()
        document.add_heading(f"Document {i}", level=1)
        for part in text.split("\n\n"):
            document.add_paragraph(part)
        out = io.BytesIO()
        document.save(out)
        return out.getvalue(), f"doc{i}.docx"
    return text.encode(), f"doc{i}.txt"


def put_payload(data: bytes, filename: str) -> dict:
    import base64
    import hashlib

    return {
        "version": 1,
        "kind": "document",
        "name": filename,
        "document": {
            "filename": filename,
            "mimetype": "",
            "sha256": hashlib.sha256(data).hexdigest(),
            "content_base64": base64.b64encode(data).decode(),
        },
    }


async def probe_health(url: str, stop: asyncio.Event, latencies: list[float], interval: float) -> None:
    parsed = httpx.URL(url)
    client = KeepAliveClient(parsed.host, parsed.port or 80)  # httpx would cost the pipeline ~1 % of the CPU
    try:
        while not stop.is_set():
            started = time.perf_counter()
            status, body = await client.get("/healthz")
            latencies.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise RuntimeError(f"/healthz answered {status}: {body[:200]!r}")
            await asyncio.sleep(interval)
    finally:
        await client.close()


async def ingest(
    url: str,
    secret: str,
    docs: list[tuple[bytes, str]],
    timeout: float,
    probe_interval: float,
    metrics_url: str | None = None,
) -> tuple[int, float, list[float]]:
    bot = uuid.uuid4()
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        latencies: list[float] = []
        stop = asyncio.Event()
        prober = asyncio.create_task(probe_health(url, stop, latencies, probe_interval))
        await asyncio.sleep(1)  # a baseline before the load
        started = time.perf_counter()
        for data, filename in docs:
            r = await signed(
                client,
                secret,
                "PUT",
                f"/internal/v1/chatbots/{bot}/sources/{uuid.uuid4()}",
                put_payload(data, filename),
            )
            r.raise_for_status()
        while True:
            listed = (await signed(client, secret, "GET", f"/internal/v1/chatbots/{bot}/sources", None)).json()
            if len(listed) == len(docs) and all(s["state"] in ("ready", "failed") for s in listed):
                break
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"not ingested after {timeout}s: {listed}")
            # Every signed listing costs the engine and this client CPU that the embedding would
            # otherwise get: poll every 0.5 s, and every 0.05 s once at most two documents are left,
            # so the end is seen at most 0.05 s late (counted against the pipeline).
            settled = sum(s["state"] in ("ready", "failed") for s in listed)
            await asyncio.sleep(0.05 if settled >= len(docs) - 2 else 0.5)
        elapsed = time.perf_counter() - started
        stop.set()
        await prober
        metrics = (await client.get(metrics_url or "/metrics")).text
    failed = [s for s in listed if s["state"] != "ready"]
    if failed:
        raise RuntimeError(f"failed sources: {failed}")
    print(engine_breakdown(metrics))
    return sum(s["chunks"] for s in listed), elapsed, latencies


def engine_breakdown(metrics: str) -> str:
    """Where the engine spent its time, from its own /metrics (cumulative since it started)."""
    values: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith(("embedding_batch_duration_seconds_", "ingestion_job_duration_seconds_")):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    embed_sum = values.get('embedding_batch_duration_seconds_sum{purpose="ingest"}', 0.0)
    embed_n = values.get('embedding_batch_duration_seconds_count{purpose="ingest"}', 0.0)
    job_sum = values.get('ingestion_job_duration_seconds_sum{kind="document"}', 0.0)
    job_n = values.get('ingestion_job_duration_seconds_count{kind="document"}', 0.0)
    return (
        f"engine: {embed_n:.0f} ingest encode calls, {embed_sum:.1f} s in encode; "
        f"{job_n:.0f} document jobs, {job_sum:.1f} s summed job wall time"
    )


class BareEncode:
    """`model.encode` as a user would call it: one call, torch using every core."""

    def __init__(self, embedder: object, batch_sizes: list[int]) -> None:
        from app.embedding.service import available_cpus

        self.model = embedder.load()  # type: ignore[attr-defined]  # the same weights the engine uses
        self.batch_sizes = batch_sizes
        self.cores = available_cpus()

    def time(self, texts: list[str], batch_size: int) -> float:
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(self.cores)
        try:
            self.model.encode(texts[:8], batch_size=batch_size, normalize_embeddings=True)  # warm-up
            started = time.perf_counter()
            self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
            return time.perf_counter() - started
        finally:
            torch.set_num_threads(previous)

    def sweep(self, texts: list[str]) -> dict[int, float]:
        return {b: self.time(texts, b) for b in self.batch_sizes}


def engine_encode(embedder: object, texts: list[str]) -> float:
    """The engine's encoder without the pipeline: `EmbeddingService.embed` on all chunks at once."""

    async def run() -> float:
        warm = texts[: embedder.threads * embedder.batch_size]  # type: ignore[attr-defined]
        await embedder.embed(warm, purpose="bench")  # type: ignore[attr-defined]  # a batch for every model thread
        started = time.perf_counter()
        await embedder.embed(texts, purpose="bench")  # type: ignore[attr-defined]
        return time.perf_counter() - started

    return asyncio.run(run())


def local_chunks(docs: list[tuple[bytes, str]], embedder: object) -> list[str]:
    from app.config import Settings
    from app.extraction.extractors import Limits, PageText, extract
    from app.ingestion.chunking import chunk_pages

    s = Settings(_env_file=None)  # type: ignore[call-arg]
    limits = Limits(
        s.max_document_bytes, s.max_pdf_pages, s.max_extracted_chars, s.extraction_memory_mb * 1024 * 1024 // 2
    )
    texts: list[str] = []
    for data, filename in docs:
        extracted = extract(data, filename, "", limits)
        title = extracted.title or filename
        chunks = chunk_pages(
            [PageText(extracted.blocks, title)], embedder.tokenizer, s.chunk_tokens, s.chunk_overlap_tokens
        )  # type: ignore[attr-defined]
        texts += [c.text for c in chunks]
    return texts


class ForeignCpu:
    """CPU used by processes other than this benchmark and the engine it started (cores, averaged).

    The machine is shared: this tells whether a measurement was disturbed by someone else's work.
    Busy time of the whole machine (/proc/stat) minus this process tree's own CPU time.
    """

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir  # the embedded PostgreSQL (a daemon, not our child) runs from it
        self.started = time.perf_counter()
        self.busy, self.own, self.client = self._busy(), self._own(), self._client()

    @staticmethod
    def _busy() -> float:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
        return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")

    def _own(self) -> float:
        import psutil

        total = 0.0
        roots = [psutil.Process()]
        for p in psutil.process_iter(["cmdline"]):
            if self.state_dir in " ".join(p.info["cmdline"] or []) and p.pid != roots[0].pid:
                roots.append(p)
        mine = {p.pid: p for root in roots for p in [root, *root.children(recursive=True)]}
        for p in mine.values():
            try:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        return total

    @staticmethod
    def _client() -> float:
        t = os.times()  # this process only: the health prober and status poller during the ingest
        return t.user + t.system

    def client_cores(self) -> float:
        return (self._client() - self.client) / (time.perf_counter() - self.started)

    def cores(self) -> float:
        wall = time.perf_counter() - self.started
        foreign = (self._busy() - self.busy) - (self._own() - self.own)
        return max(0.0, foreign) / wall


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=24)
    parser.add_argument("--words", type=int, default=4000, help="words per document")
    parser.add_argument("--url", help="target a running engine instead of starting one")
    parser.add_argument("--secret", default=os.environ.get("WEBHOOK_SECRET", DEV_WEBHOOK_SECRET))
    parser.add_argument("--database-url", help="database for the started engine (default: embedded, temporary)")
    parser.add_argument("--port", type=int, default=8012)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument(
        "--probe-interval",
        type=float,
        default=0.1,
        help="seconds between /healthz probes (10/s: far more than any load balancer, and enough samples"
        " for a p99; every probe is CPU taken from the embedding on a 2-core machine)",
    )
    parser.add_argument("--log-level", default="WARNING", help="the started engine's LOG_LEVEL (INFO logs stage times)")
    parser.add_argument(
        "--separate-worker",
        action="store_true",
        help="run ingestion in a `python -m app.worker` process beside the API (the Compose topology)"
        " instead of in the API process (local mode's default)",
    )
    parser.add_argument(
        "--bare-batch-sizes",
        default="8,16,32,64",
        help="batch sizes tried for the bare model.encode reference; the fastest is used (32 is the library's default)",
    )
    args = parser.parse_args()

    from app.config import Settings
    from app.embedding.service import EmbeddingService

    load_start = os.getloadavg()[0]
    state = tempfile.TemporaryDirectory(prefix="bench-ingest-")
    docs = [make_document(i, args.words) for i in range(args.docs)]
    engine_settings = Settings(_env_file=None)  # type: ignore[call-arg]  # EMBEDDING_* from the environment
    embedder = EmbeddingService.from_settings(engine_settings)
    embedder.load()
    texts = local_chunks(docs, embedder)
    bare = BareEncode(embedder, [int(b) for b in args.bare_batch_sizes.split(",")])
    meter = ForeignCpu(state.name)
    bare_before = bare.sweep(texts)
    engine_encoder_before = engine_encode(embedder, texts)
    foreign_before = meter.cores()

    proc = None
    url = args.url
    if url is None:
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(args.port),
            "STATE_DIR": state.name,
            "WEBHOOK_SECRET": args.secret,
            "LLM_BACKEND": "none",
            "LOG_LEVEL": args.log_level,
            "ODOO_URL": "",
        }
        if args.database_url:
            env["DATABASE_URL"] = args.database_url
        if args.separate_worker:
            env["WORKERS_IN_PROCESS"] = "false"
        proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=REPO / "fastapi_service", env=env)
        url = f"http://127.0.0.1:{args.port}"
        deadline = time.time() + 300
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit("the engine did not become ready")
            time.sleep(0.5)
    worker = None
    metrics_url = None
    if args.separate_worker:
        # The worker joins the API's (embedded) database through the same STATE_DIR and serves
        # its ingestion metrics on its own port.
        env["WORKER_METRICS_PORT"] = str(args.port + 1)
        metrics_url = f"http://127.0.0.1:{args.port + 1}/metrics"
        worker = subprocess.Popen([sys.executable, "-m", "app.worker"], cwd=REPO / "fastapi_service", env=env)
        time.sleep(20)  # model load + warm-up encode, so the worker is ready before timing starts
    try:
        meter = ForeignCpu(state.name)
        chunks, elapsed, latencies = asyncio.run(
            ingest(url, args.secret, docs, args.timeout, args.probe_interval, metrics_url)
        )
        foreign_ingest, client_ingest = meter.cores(), meter.client_cores()
    finally:
        for child in (worker, proc):
            if child is not None:
                child.terminate()
                child.wait(60)
        state.cleanup()

    # The references again with the engine stopped; the faster time of each is used, so drift on
    # a shared machine can only lower the reported ratios.
    meter = ForeignCpu(state.name)
    best_batch = min(bare_before, key=bare_before.__getitem__)
    bare_after = bare.time(texts, best_batch)
    engine_encoder_after = engine_encode(embedder, texts)
    foreign_after = meter.cores()
    bare_elapsed = min(bare_before[best_batch], bare_after)
    engine_encoder_elapsed = min(engine_encoder_before, engine_encoder_after)
    pipeline_rate = chunks / elapsed
    bare_rate = len(texts) / bare_elapsed
    engine_encoder_rate = len(texts) / engine_encoder_elapsed
    print(
        f"documents: {args.docs} x ~{args.words} words ({sum(len(d) for d, _ in docs) / 1e6:.1f} MB); chunks: {chunks} (local re-chunk: {len(texts)})"
    )
    print(f"pipeline: {chunks} chunks in {elapsed:.1f} s = {pipeline_rate:.2f} chunks/s")
    sweep = ", ".join(f"{b}: {len(texts) / t:.2f}/s" for b, t in bare_before.items())
    print(
        f"bare model.encode ({bare.cores} torch threads), best batch_size={best_batch}: {len(texts)} chunks in"
        f" {bare_elapsed:.1f} s = {bare_rate:.2f} chunks/s (before the ingest {bare_before[best_batch]:.1f} s,"
        f" after {bare_after:.1f} s; sweep before: {sweep})"
    )
    print(
        f"engine encoder alone ({embedder.threads} model threads x 1 torch thread, batch_size={embedder.batch_size}):"
        f" {engine_encoder_elapsed:.1f} s = {engine_encoder_rate:.2f} chunks/s"
        f" (before {engine_encoder_before:.1f} s, after {engine_encoder_after:.1f} s)"
    )
    print(f"ratio pipeline / bare model.encode: {pipeline_rate / bare_rate:.3f} (target >= 0.90)")
    print(
        f"ratio pipeline / engine encoder alone: {pipeline_rate / engine_encoder_rate:.3f} (what the rest of the pipeline costs)"
    )
    print(
        f"/healthz during ingest: n={len(latencies)} p50={statistics.median(latencies):.1f} ms "
        f"p99={percentile(latencies, 0.99):.1f} ms max={max(latencies):.1f} ms (target p99 <= 50 ms)"
    )
    print(
        f"machine: load average (1 min) {load_start:.2f} at start; other processes (not this benchmark, its engine or database) used {foreign_before:.2f} cores"
        f" during the bare encode before, {foreign_ingest:.2f} during the ingest, {foreign_after:.2f} during the"
        f" bare encode after (of 2); this benchmark's own prober/poller used {client_ingest:.2f} cores during the ingest"
    )


if __name__ == "__main__":
    main()
