"""After a real ingest (in-process worker) and a real chat (Ollama protocol server), /metrics
exposes every series operations needs: request latency by route, ingestion jobs by state and
duration, queue depth, embedding throughput, LLM latency and tokens."""

import re
import uuid

from tests.answering.fake_llm import FakeModelServer
from tests.answering.helpers import create_bot
from tests.conftest import make_settings
from tests.ingestion.helpers import document, prose, put_source, wait_settled


def sample(metrics: str, name: str, **labels: str) -> float:
    for line in metrics.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels}")


async def test_metrics_cover_ingest_and_chat(app_factory, db_url, db):
    with FakeModelServer(["Returns ", "take ", "30 days ", "[1]."]) as fake:
        client = await app_factory(make_settings(database_url=db_url, llm_backend="ollama", ollama_url=fake.url))
        bot = await create_bot(client)
        source = uuid.uuid4()
        text = "Returns policy: customers can return any product within 30 days for a full refund. " * 10 + prose(
            300, seed=3
        )
        r = await put_source(client, bot.id, source, document(1, text.encode(), "policy.txt"))
        assert r.status_code == 202, r.text
        settled = await wait_settled(db, source, 1)
        assert settled["state"] == "ready"
        chat = await client.post("/v1/chat", json={"message": "What is the returns policy?"}, headers=bot.sk_headers())
        assert chat.status_code == 200 and chat.json()["generator"] == "ollama", chat.text
        metrics = (await client.get("/metrics")).text

    assert sample(metrics, "http_request_duration_seconds_count", route="/v1/chat", status="200") >= 1
    assert sample(metrics, "ingestion_jobs_total", state="ready") >= 1
    assert sample(metrics, "ingestion_job_duration_seconds_count", kind="document") >= 1
    assert re.search(r'^ingestion_queue_depth\{state="todo"\} ', metrics, re.M)
    assert sample(metrics, "ingested_chunks_total") >= 1
    assert sample(metrics, "embedding_texts_total", purpose="ingest") >= settled["chunk_count"]
    assert sample(metrics, "llm_request_duration_seconds_count", backend="ollama") >= 1
    assert sample(metrics, "llm_tokens_total", backend="ollama", kind="completion") >= 1
    assert sample(metrics, "chat_answers_total", generator="ollama") >= 1
    assert sample(metrics, "retrieval_duration_seconds_count") >= 1
