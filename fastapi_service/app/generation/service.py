"""Answering behind one call: `Answerer.answer(...)` picks the backend, holds the deadline, records
metrics, and falls back to an extractive answer when the model is unreachable or absent.

Which backend: LLM_BACKEND (Ollama, an OpenAI-compatible server, or none: extractive only). A model
is asked only when some chunk is similar enough (`can_answer`); more than `llm_max_concurrency`
generations wait at most `llm_queue_timeout_seconds` for a slot (`acquire`), then get a fast 503
with Retry-After instead of piling up behind a busy model. An outage is logged once when it starts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.config import LLMBackend, Settings
from app.errors import ServiceUnavailable
from app.generation.backends import (
    Backend,
    BackendUnavailable,
    OllamaBackend,
    OpenAIBackend,
    Options,
    Usage,
    with_deadline,
)
from app.generation.extractive import ExtractiveAnswerer
from app.generation.prompt import Turn, build_messages
from app.generation.refusal import is_refusal
from app.observability.metrics import LLM_SECONDS, LLM_TOKENS
from app.retrieval.service import Hit, Retriever

logger = logging.getLogger(__name__)
EXTRACTIVE = "extractive"


@dataclass(frozen=True)
class Cited:
    """The passages the answer is drawn from; always the first event."""

    hits: list[Hit]


@dataclass(frozen=True)
class Piece:
    text: str


@dataclass(frozen=True)
class Answered:
    """The last event: the whole answer and what produced it."""

    text: str
    generator: str  # the backend's name, or "extractive"
    hits: list[Hit]  # the passages it cites (none when nothing answered)
    answered: bool  # False: the "no answer" message, or the model said it does not know
    usage: Usage = field(default_factory=Usage)
    cut_short: bool = False  # the model stopped mid-answer: `text` is what it said until then


Event = Cited | Piece | Answered


def _backend(settings: Settings) -> tuple[Backend | None, str]:
    if settings.llm_backend == LLMBackend.OLLAMA:
        return OllamaBackend(settings.ollama_url, settings.llm_timeout_seconds), settings.ollama_model
    if settings.llm_backend == LLMBackend.OPENAI and settings.openai_base_url:
        backend = OpenAIBackend(settings.openai_base_url, settings.openai_api_key, settings.llm_timeout_seconds)
        return backend, settings.openai_model
    return None, ""


class Answerer:
    def __init__(self, settings: Settings, retriever: Retriever, extractive: ExtractiveAnswerer) -> None:
        self.settings = settings
        self.retriever = retriever  # its query-vector cache serves the extractive answers too
        self.extractive = extractive
        self.backend, self.default_model = _backend(settings)
        self._slots = asyncio.Semaphore(settings.llm_max_concurrency)
        self.outage = False  # the model failed and has not answered since

    @property
    def uses_model(self) -> bool:
        return self.backend is not None

    @property
    def backend_name(self) -> str:
        return self.backend.name if self.backend is not None else "none"

    def can_answer(self, hits: Sequence[Hit]) -> bool:
        """Whether the passages may answer at all. A model is asked only when some chunk is similar
        enough; extractive answers score every sentence themselves (EXTRACTIVE_MIN_SCORE), which
        judges a long chunk better than its cosine."""
        if not hits:
            return False
        return not self.uses_model or max(h.cosine for h in hits) >= self.settings.answer_min_similarity

    async def acquire(self) -> None:
        """Take a generation slot (release() it when the answer ends) or fail fast with 503."""
        try:
            await asyncio.wait_for(self._slots.acquire(), self.settings.llm_queue_timeout_seconds)
        except TimeoutError:
            raise ServiceUnavailable("all answer slots are busy; retry shortly", headers={"Retry-After": "5"}) from None

    def release(self) -> None:
        self._slots.release()

    async def answer(
        self,
        question: str,
        hits: list[Hit],
        history: Sequence[Turn],
        prompts: Mapping[str, Any],
        generation: Mapping[str, Any],
        language: str = "en",
    ) -> AsyncIterator[Event]:
        """`Cited`, `Piece`*, then `Answered`. `hits` are the passages `can_answer` accepted, or
        none: then the answer is the "no answer" message. The caller holds a slot (`acquire`)
        when a model is used."""
        if not hits or self.backend is None:
            # No model call: the answer is known before the first event, so an "I don't know"
            # lists no sources.
            result = await self._extractive(question, hits, language) if hits else self._no_answer()
            yield Cited(result.hits)
            yield Piece(result.text)
            yield result
            return
        backend = self.backend
        yield Cited(hits)
        options = Options(
            model=generation.get("model") or self.default_model,
            temperature=float(generation.get("temperature", 0.2)),
            max_tokens=int(generation.get("max_tokens", 512)),
        )
        messages = build_messages(dict(prompts), question, hits, history)
        parts: list[str] = []
        usage = Usage()
        started = time.perf_counter()
        deadline = time.monotonic() + self.settings.llm_timeout_seconds
        try:
            async for piece in with_deadline(backend.stream(messages, options), deadline):
                if isinstance(piece, Usage):
                    usage = piece
                    continue
                parts.append(piece)
                yield Piece(piece)
        except BackendUnavailable as exc:
            LLM_SECONDS.labels(backend.name, "error").observe(time.perf_counter() - started)
            self._model_failed(str(exc))
            if parts:
                yield Answered("".join(parts), backend.name, hits, True, usage, cut_short=True)
                return
            # The model failed before its first token: the sources are out already; an extractive
            # answer that finds nothing cites nothing and counts as unanswered.
            result = await self._extractive(question, hits, language)
            yield Piece(result.text)
            yield result
            return
        self._model_answered()
        LLM_SECONDS.labels(backend.name, "ok").observe(time.perf_counter() - started)
        LLM_TOKENS.labels(backend.name, "prompt").inc(usage.prompt_tokens)
        LLM_TOKENS.labels(backend.name, "completion").inc(usage.completion_tokens)
        if not parts:  # the model said nothing at all
            result = await self._extractive(question, hits, language)
            yield Piece(result.text)
            yield result
            return
        text = "".join(parts)
        # "I don't know" from the model: the documents did not answer, as when nothing was similar.
        answered = not is_refusal(text, self.settings.no_answer_message)
        yield Answered(text, backend.name, hits, answered, usage)

    def _no_answer(self) -> Answered:
        return Answered(self.settings.no_answer_message, EXTRACTIVE, [], False)

    async def _extractive(self, question: str, hits: list[Hit], language: str) -> Answered:
        """Quote the sentences that answer, citing every passage offered; or the "no answer"
        message, citing none, when nothing answers."""
        vector = await self.retriever.embed_query(question)
        extract = await self.extractive.answer(question, vector, hits, language)
        if extract is None:
            return self._no_answer()
        return Answered(extract.text, EXTRACTIVE, hits, True)

    def _model_failed(self, error: str) -> None:
        """Log an outage once when it starts (then at DEBUG), not one WARNING per chat."""
        if self.outage:
            logger.debug("generation failed", extra={"backend": self.backend_name, "error": error})
            return
        self.outage = True
        logger.warning(
            "the language model is unreachable; answering extractively until it is back",
            extra={"backend": self.backend_name, "error": error},
        )

    def _model_answered(self) -> None:
        if self.outage:
            self.outage = False
            logger.info("the language model answers again", extra={"backend": self.backend_name})

    async def close(self) -> None:
        if self.backend is not None:
            await self.backend.close()
