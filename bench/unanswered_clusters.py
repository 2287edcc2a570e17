"""Cost and shape of the unanswered-questions report: embedding + grouping N distinct questions.

    .venv/bin/python bench/unanswered_clusters.py [--n 500]

The report (`GET /internal/v1/chatbots/{id}/unanswered`, app/conversations/service.py) embeds each
distinct unanswered question with the engine's model, then groups them greedily
(CLUSTER_SIMILARITY). This measures those two steps in-process for `n` questions written as 8
topics x several wordings x variations, and prints how many groups they form and how pure they are
(the share of questions whose group's leader is of their own topic).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "fastapi_service"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from app.config import Settings  # noqa: E402
from app.conversations.service import CLUSTER_SIMILARITY, EMBED_PURPOSE, cluster  # noqa: E402
from app.embedding.service import EmbeddingService  # noqa: E402

PURPOSE = os.environ.get("PURPOSE", EMBED_PURPOSE)
TOPICS = {
    "pets": ["Can I bring my dog {x}?", "Are dogs allowed {x}?", "Do you accept pets {x}?"],
    "parking": ["Is there parking {x}?", "Where can I park my car {x}?", "Do you have a car park {x}?"],
    "gift": ["Do you sell gift cards {x}?", "Can I buy a gift voucher {x}?", "Are gift cards available {x}?"],
    "hours": [
        "When are you open on Sundays {x}?",
        "What are the Sunday opening hours {x}?",
        "Are you open Sunday {x}?",
    ],
    "jobs": ["Are you hiring {x}?", "How do I apply for a job {x}?", "Do you have job openings {x}?"],
    "wifi": ["Is there free wifi {x}?", "Can I use the internet {x}?", "Do you have wi-fi for customers {x}?"],
    "cash": ["Can I pay in cash {x}?", "Do you take cash {x}?", "Is cash payment accepted {x}?"],
    "recycle": [
        "Do you recycle old batteries {x}?",
        "Can I drop off used batteries {x}?",
        "Where do I recycle batteries {x}?",
    ],
}
PLACES = ["in the store", "at the Paris shop", "in Lyon", "at your outlet", "downtown", "at the mall", "today", "now"]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    n = parser.parse_args().n
    rows = []
    now = datetime.now(UTC)
    combos = itertools.cycle((t, w, p) for p in PLACES for t, ws in TOPICS.items() for w in ws)
    for i, (topic, wording, place) in zip(range(n), combos, strict=False):
        text = wording.format(x=place) + ("" if i < len(PLACES) * 24 else f" (#{i})")
        rows.append((topic, {"question": text, "count": 1 + i % 5, "last_asked": now - timedelta(minutes=i)}))
    rows.sort(key=lambda r: -r[1]["count"])
    questions = [q for _, q in rows]
    embedder = EmbeddingService.from_settings(Settings(environment="test"))
    await embedder.load_async()
    await embedder.embed(["warm up"])
    started = time.perf_counter()
    vectors = await embedder.embed([q["question"] for q in questions], purpose=PURPOSE)
    embedded = time.perf_counter() - started
    started = time.perf_counter()
    groups = cluster(questions, vectors, CLUSTER_SIMILARITY)
    grouped = time.perf_counter() - started
    topic_of = {q["question"]: t for t, q in rows}
    pure = sum(
        sum(topic_of[q["question"]] == topic_of[g["questions"][0]["question"]] for q in g["questions"]) for g in groups
    )
    print(f"questions={n} topics={len(TOPICS)} threshold={CLUSTER_SIMILARITY}")
    print(f"groups={len(groups)} largest={max(len(g['questions']) for g in groups)} purity={pure / n:.1%}")
    print(f"embed_s={embedded:.2f} cluster_s={grouped:.3f} per_question_ms={1000 * (embedded + grouped) / n:.1f}")
    embedder.close()


if __name__ == "__main__":
    asyncio.run(main())
