"""Streaming chat backends: Ollama (official async client) and any OpenAI-compatible server.

Each yields text pieces and finally one `Usage`. Connection failures, HTTP errors and timeouts
raise `BackendUnavailable`; the caller answers extractively instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import ollama


class BackendUnavailable(Exception):
    """The model could not be reached or failed before/while answering."""


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Options:
    model: str
    temperature: float
    max_tokens: int


Piece = str | Usage


class Backend(Protocol):
    name: str

    def stream(self, messages: list[dict[str, str]], options: Options) -> AsyncIterator[Piece]: ...

    async def close(self) -> None: ...


class OllamaBackend:
    name = "ollama"

    def __init__(self, url: str, timeout: float) -> None:
        self.client = ollama.AsyncClient(host=url, timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)))

    async def stream(self, messages: list[dict[str, str]], options: Options) -> AsyncIterator[Piece]:
        try:
            parts = await self.client.chat(
                model=options.model,
                messages=messages,
                stream=True,
                options={"temperature": options.temperature, "num_predict": options.max_tokens},
            )
            async for part in parts:
                text = part.message.content if part.message else None
                if text:
                    yield text
                if part.done:
                    yield Usage(part.prompt_eval_count or 0, part.eval_count or 0)
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError, ValueError) as exc:
            raise BackendUnavailable(f"ollama: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        await self.client.close()  # type: ignore[no-untyped-call]  # ollama leaves AsyncClient.close unannotated


class OpenAIBackend:
    """`POST {base}/v1/chat/completions` with `stream: true`, parsed as Server-Sent Events."""

    name = "openai"

    def __init__(self, base_url: str, api_key: str, timeout: float) -> None:
        base = base_url.rstrip("/")
        self.url = base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)))

    async def stream(self, messages: list[dict[str, str]], options: Options) -> AsyncIterator[Piece]:
        body: dict[str, Any] = {
            "model": options.model,
            "messages": messages,
            "stream": True,
            "temperature": options.temperature,
            "max_tokens": options.max_tokens,
            "stream_options": {"include_usage": True},
        }
        usage = Usage()
        completion_chars = 0
        try:
            async with self.client.stream("POST", self.url, json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise BackendUnavailable(f"openai: HTTP {response.status_code}")
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    if event.get("usage"):
                        usage = Usage(
                            int(event["usage"].get("prompt_tokens") or 0),
                            int(event["usage"].get("completion_tokens") or 0),
                        )
                    for choice in event.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            completion_chars += len(text)
                            yield text
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise BackendUnavailable(f"openai: {type(exc).__name__}: {exc}") from exc
        if not usage.completion_tokens and completion_chars:
            usage.completion_tokens = max(1, completion_chars // 4)  # server sent no usage: estimate
        yield usage

    async def close(self) -> None:
        await self.client.aclose()


async def with_deadline(pieces: AsyncIterator[Piece], deadline: float) -> AsyncIterator[Piece]:
    """Re-yield `pieces`, raising BackendUnavailable once the monotonic `deadline` passes."""
    import asyncio

    iterator = aiter(pieces)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BackendUnavailable("the model did not finish in time")
        try:
            piece = await asyncio.wait_for(anext(iterator), remaining)
        except StopAsyncIteration:
            return
        except TimeoutError as exc:
            raise BackendUnavailable("the model did not finish in time") from exc
        yield piece
