"""The answer when no model answers: the best passages, quoted, with their sources."""

from __future__ import annotations

from collections.abc import Sequence

from app.retrieval.service import Hit, snippet

INTRO = "I can't reach the language model right now, so here are the most relevant passages from the documents:"


def extractive_answer(hits: Sequence[Hit], max_passages: int = 3) -> str:
    parts = [INTRO]
    for n, hit in enumerate(hits[:max_passages], 1):
        parts.append(f"> {snippet(hit.content, 500)}\n— [{n}] {hit.name}")
    return "\n\n".join(parts)
