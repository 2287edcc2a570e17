"""Wire shapes of the internal source API (docs/contract.md; golden bodies in contract/payloads.json)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.internal.delivery import IgnoredReason
from app.wire import INT64_MAX

SourceState = Literal["queued", "processing", "ready", "failed"]


class DocumentIn(BaseModel):
    filename: str = Field("", max_length=500)
    mimetype: str = Field("", max_length=200)
    sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    content_base64: str


class LinkIn(BaseModel):
    url: str = Field(min_length=1, max_length=2048)
    max_depth: int = Field(0, ge=0, le=10)
    max_pages: int = Field(1, ge=1, le=5000)
    refresh_hours: float | None = Field(None, ge=0, le=24 * 365)  # None or 0 => never refreshed


class SourcePut(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: int = Field(ge=1, le=INT64_MAX)
    kind: Literal["document", "link"]
    name: str = Field("", max_length=500)
    document: DocumentIn | None = None
    link: LinkIn | None = None

    @model_validator(mode="after")
    def _matching_body(self) -> SourcePut:
        if self.kind == "document" and self.document is None:
            raise ValueError("kind 'document' needs a 'document' object")
        if self.kind == "link" and self.link is None:
            raise ValueError("kind 'link' needs a 'link' object")
        return self


class SourceAccepted(BaseModel):
    applied: bool
    reason: IgnoredReason | None = None  # set when applied is false
    job: int | None = None  # id of the ingestion job; None when nothing was queued
    detail: str = ""


class Progress(BaseModel):
    done: int  # chunks embedded so far
    total: int


class SourceStatus(BaseModel):
    source: UUID
    version: int
    kind: str
    name: str
    state: SourceState | Literal["deleted"]
    chunks: int
    error: str | None
    indexed_version: int | None
    indexed_at: datetime | None
    progress: Progress | None = None  # while a job is embedding
