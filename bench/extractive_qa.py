"""Extractive answer quality: the share of answerable questions whose fact is in the answer, and the
share of unanswerable questions answered "I don't know".

    .venv/bin/python bench/extractive_qa.py [--verbose] [--min-score 0.5]

Starts `python -m app` on 127.0.0.1 (LLM_BACKEND=none, embedded database in a temporary state
directory), creates a chatbot through the signed internal API, ingests the three documents of
tests/answering/qa_set.py (PDF, DOCX, HTML, built there) through signed source PUTs, waits until
they are `ready`, then asks every question of the set through `POST /v1/chat`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "fastapi_service"))
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _common import signed, wait_ready  # noqa: E402
from retrieval_scifact import start_engine  # noqa: E402

from app.config import DEV_WEBHOOK_SECRET, Settings  # noqa: E402
from app.keys.format import generate_key, key_hash  # noqa: E402
from tests.answering import qa_set  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(args: argparse.Namespace) -> None:
    state = tempfile.TemporaryDirectory(prefix="bench-extractive-")
    port = free_port()
    if args.min_score is not None:
        os.environ["EXTRACTIVE_MIN_SCORE"] = str(args.min_score)
    proc = start_engine(port, state.name, DEV_WEBHOOK_SECRET, None)
    secret = DEV_WEBHOOK_SECRET
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            await wait_ready(client)
            bot = uuid.uuid4()
            key = generate_key("secret")
            chatbot = {
                "version": 1,
                "tenant": "bench",
                "name": "Extractive QA",
                "generation": {"top_k": 5},
                "api_keys": [{"id": str(uuid.uuid4()), "kind": "secret", "prefix": key[:11], "sha256": key_hash(key)}],
                "rate_limits": {"key_per_minute": 100000, "ip_per_minute": 100000},
            }
            r = await signed(client, secret, "PUT", f"/internal/v1/chatbots/{bot}", chatbot)
            r.raise_for_status()
            started = time.perf_counter()
            sources = qa_set.source_ids(bot)
            for source, (filename, mimetype, data) in zip(sources, qa_set.documents(), strict=True):
                payload = qa_set.document_payload(filename, mimetype, data)
                r = await signed(client, secret, "PUT", f"/internal/v1/chatbots/{bot}/sources/{source}", payload)
                r.raise_for_status()
            while True:
                listed = (await signed(client, secret, "GET", f"/internal/v1/chatbots/{bot}/sources", None)).json()
                if len(listed) == len(sources) and all(s["state"] in ("ready", "failed") for s in listed):
                    break
                await asyncio.sleep(0.5)
            failed = [s for s in listed if s["state"] == "failed"]
            if failed:
                raise SystemExit(f"ingestion failed: {failed}")
            chunks = sum(s["chunks"] for s in listed)
            print(f"ingested {len(sources)} documents ({chunks} chunks) in {time.perf_counter() - started:.1f} s")

            headers = {"Authorization": f"Bearer {key}"}

            async def ask(question: str) -> httpx.Response:
                return await client.post("/v1/chat", json={"message": question}, headers=headers)

            started = time.perf_counter()
            report = await qa_set.evaluate(ask, Settings(_env_file=None).no_answer_message)  # type: ignore[call-arg]
            asked = len(qa_set.QUESTIONS) + len(qa_set.UNANSWERABLE)
            elapsed = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(30)
        state.cleanup()
    if args.verbose:
        for question, answer in report.missed:
            print(f"MISSED  {question}\n        {answer!r}")
        for question, answer in report.answered_wrongly:
            print(f"ANSWERED (should not) {question}\n        {answer!r}")
    right, answerable = len(report.answered_right), len(qa_set.QUESTIONS)
    declined, unanswerable = len(report.declined_right), len(qa_set.UNANSWERABLE)
    print(f"answer fact in the extractive answer: {right}/{answerable} = {100 * report.fact_share:.0f} %")
    print(f'unanswerable answered "I don\'t know": {declined}/{unanswerable} = {100 * report.decline_share:.0f} %')
    print(f"{asked} questions in {elapsed:.1f} s ({1000 * elapsed / asked:.0f} ms per answer)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true", help="print the missed answers")
    parser.add_argument("--min-score", type=float, default=None, help="EXTRACTIVE_MIN_SCORE for the engine")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
