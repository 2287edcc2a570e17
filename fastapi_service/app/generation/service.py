"""Which backend answers, with a bounded number of concurrent generations.

More than `llm_max_concurrency` generations wait at most `llm_queue_timeout_seconds` for a slot,
then get a fast 503 with Retry-After instead of piling up behind a busy model.
"""

from __future__ import annotations

import asyncio
import logging

from app.config import LLMBackend, Settings
from app.errors import ServiceUnavailable
from app.generation.backends import Backend, OllamaBackend, OpenAIBackend

logger = logging.getLogger(__name__)


class GenerationService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backend: Backend | None = None
        self.default_model = ""
        if settings.llm_backend == LLMBackend.OLLAMA:
            self.backend = OllamaBackend(settings.ollama_url, settings.llm_timeout_seconds)
            self.default_model = settings.ollama_model
        elif settings.llm_backend == LLMBackend.OPENAI and settings.openai_base_url:
            self.backend = OpenAIBackend(
                settings.openai_base_url, settings.openai_api_key, settings.llm_timeout_seconds
            )
            self.default_model = settings.openai_model
        self._slots = asyncio.Semaphore(settings.llm_max_concurrency)
        self.outage = False  # the model failed and has not answered since

    def model_failed(self, error: str) -> None:
        """Log an outage once when it starts (then at DEBUG), not one WARNING per chat."""
        if self.outage:
            logger.debug("generation failed", extra={"backend": self.backend_name, "error": error})
            return
        self.outage = True
        logger.warning(
            "the language model is unreachable; answering extractively until it is back",
            extra={"backend": self.backend_name, "error": error},
        )

    def model_answered(self) -> None:
        if self.outage:
            self.outage = False
            logger.info("the language model answers again", extra={"backend": self.backend_name})

    @property
    def backend_name(self) -> str:
        return self.backend.name if self.backend is not None else "none"

    async def acquire(self) -> None:
        """Take a generation slot (release() it when the answer ends) or fail fast with 503."""
        try:
            await asyncio.wait_for(self._slots.acquire(), self.settings.llm_queue_timeout_seconds)
        except TimeoutError:
            raise ServiceUnavailable("all answer slots are busy; retry shortly", headers={"Retry-After": "5"}) from None

    def release(self) -> None:
        self._slots.release()

    async def close(self) -> None:
        if self.backend is not None:
            await self.backend.close()  # type: ignore[attr-defined]
