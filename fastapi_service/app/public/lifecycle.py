"""Build the answering services once the database is ready; close them at shutdown."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from app.chat.service import ChatService
from app.errors import ServiceUnavailable
from app.generation.extractive import ExtractiveAnswerer
from app.generation.service import GenerationService
from app.keys import repository as keys_repository
from app.keys.service import KeyResolver
from app.public.origins import OriginRegistry
from app.ratelimit.client_ip import parse_networks
from app.ratelimit.service import RateLimiter
from app.resources import Resources
from app.retrieval.service import Retriever

ORIGIN_CACHE_SECONDS = 10.0


async def start_answering(resources: Resources) -> None:
    settings = resources.settings
    pool = resources.pool
    assert pool is not None

    async def load_domains() -> list[str]:
        async with pool.acquire() as conn:
            return await keys_repository.allowed_domains_of_active_chatbots(conn)

    resolver = KeyResolver(pool, settings.key_cache_seconds)
    resolver.start()
    retriever = Retriever(pool, resources.embedder, settings)
    generation = GenerationService(settings)
    resources.extras.update(
        key_resolver=resolver,
        rate_limiter=RateLimiter(
            settings.rate_limit_storage_url,
            settings.rate_limit_default,
            settings.rate_limit_ip,
            settings.rate_limit_auth_failures,
        ),
        trusted_networks=parse_networks(settings.trusted_proxies),
        origin_registry=OriginRegistry(load_domains, min(ORIGIN_CACHE_SECONDS, settings.key_cache_seconds)),
        retriever=retriever,
        generation=generation,
        chat_service=ChatService(
            pool, retriever, generation, ExtractiveAnswerer(resources.embedder, settings.extractive_min_score), settings
        ),
    )


async def stop_answering(resources: Resources) -> None:
    resolver = resources.extras.pop("key_resolver", None)
    if resolver is not None:
        await resolver.stop()
    generation = resources.extras.pop("generation", None)
    if generation is not None:
        await generation.close()


def forget_chatbot(resources: Resources, chatbot_id: UUID) -> None:
    """A chatbot was updated or deleted here: this process's caches of it (keys with their
    chatbot, CORS allow-lists) are dropped at once. Other API processes follow within
    KEY_CACHE_SECONDS (at most 60 s), their caches' lifetime."""
    resolver = resources.extras.get("key_resolver")
    if resolver is not None:
        resolver.forget_chatbot(chatbot_id)
    origins = resources.extras.get("origin_registry")
    if origins is not None:
        origins.invalidate()


def answering_service(resources: Resources, name: str) -> Any:
    try:
        return resources.extras[name]
    except KeyError:
        raise ServiceUnavailable("the engine is starting; retry shortly", headers={"Retry-After": "5"}) from None
