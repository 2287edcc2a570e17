"""Wire shapes of the internal chatbot API (docs/contract.md; golden bodies in contract/payloads.json).

The defaults below are the contract's (contract/defaults.json); both test suites check them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.chatbots.domains import domain_problem
from app.internal.delivery import IgnoredReason
from app.languages import language_problem
from app.wire import INT64_MAX

SUGGESTION_MAX_CHARS = 200  # one widget suggestion button
HANDOFF_PHRASE_MAX_CHARS = 100  # one phrase that asks for a human
DEFAULT_WIDGET_COLOR = "#4F46E5"
DEFAULT_WIDGET_WELCOME = "Hi! Ask me anything about our documents."


class Prompts(BaseModel):
    system: str = Field("", max_length=20_000)
    user_template: str = Field("", max_length=20_000)


class Generation(BaseModel):
    model: str | None = Field(None, max_length=200)
    temperature: float = Field(0.2, ge=0, le=2)
    max_tokens: int = Field(512, ge=16, le=8192)
    top_k: int = Field(5, ge=1, le=50)


class ApiKeyIn(BaseModel):
    id: str = Field(min_length=1, max_length=64)
    kind: Literal["publishable", "secret"]
    prefix: str = Field(max_length=32)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    expires_at: datetime | None = None


class RateLimits(BaseModel):
    key_per_minute: int | None = Field(None, ge=1, le=100_000)
    ip_per_minute: int | None = Field(None, ge=1, le=100_000)


class WidgetLook(BaseModel):
    title: str = Field("Ask us anything", max_length=120)
    color: str = Field(DEFAULT_WIDGET_COLOR, pattern=r"^#[0-9a-fA-F]{6}$")
    welcome: str = Field(DEFAULT_WIDGET_WELCOME, max_length=1000)
    suggestions: list[Annotated[str, Field(max_length=SUGGESTION_MAX_CHARS)]] = Field(
        default_factory=list, max_length=10
    )
    # Handoff to a human (app/handoff): the widget's button, the phrases that trigger it in a
    # question (case- and space-insensitive substring), and what the visitor is told then.
    handoff_enabled: bool = False
    handoff_phrases: list[Annotated[str, Field(min_length=2, max_length=HANDOFF_PHRASE_MAX_CHARS)]] = Field(
        default_factory=list, max_length=20
    )
    handoff_message: str = Field("", max_length=1000)


class ChatbotPut(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: int = Field(ge=1, le=INT64_MAX)
    tenant: str = Field("", max_length=200)
    name: str = Field(max_length=200)
    active: bool = True
    language: str = Field("en", max_length=16)
    prompts: Prompts = Field(default_factory=Prompts)
    generation: Generation = Field(default_factory=Generation)
    allowed_domains: list[str] = Field(default_factory=list, max_length=200)
    api_keys: list[ApiKeyIn] = Field(default_factory=list, max_length=100)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    widget: WidgetLook = Field(default_factory=WidgetLook)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        problem = language_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, values: list[str]) -> list[str]:
        cleaned = []
        for value in values:
            host = value.strip().lower()
            problem = domain_problem(host) if len(host) <= 260 else "too long"
            if problem:
                raise ValueError(f"{problem}: {value!r}")
            cleaned.append(host)
        return cleaned

    @model_validator(mode="after")
    def _distinct_keys(self) -> ChatbotPut:
        for field in ("id", "sha256"):
            values = [getattr(key, field) for key in self.api_keys]
            if len(values) != len(set(values)):
                raise ValueError(f"two api_keys have the same {field}")
        return self


class VersionOnly(BaseModel):
    version: int = Field(ge=1, le=INT64_MAX)


class Applied(BaseModel):
    applied: bool
    reason: IgnoredReason | None = None  # set when applied is false
    detail: str = ""
