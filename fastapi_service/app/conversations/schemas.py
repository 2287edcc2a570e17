"""Wire shapes of the internal operations reports that are bodies (queries are parsed by the router)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.wire import Text


class MarkHandled(BaseModel):
    model_config = ConfigDict(extra="forbid")

    questions: list[Text] = Field(min_length=1, max_length=200)  # service.MAX_HANDLED_PER_REQUEST


class MarkHandledResult(BaseModel):
    handled: int
