"""Public API: POST /v1/handoff, the widget's "talk to a person" button. Thin."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.deps import HandoffServiceDep
from app.public.deps import PublicKeyDep
from app.wire import Text

router = APIRouter(prefix="/v1", tags=["public"])


class HandoffRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: UUID
    note: Text | None = Field(None, max_length=2000, description="how to reach the visitor, or what they need")


class HandoffResponse(BaseModel):
    session_id: UUID
    message: str  # what the widget tells the visitor happens next


@router.post("/handoff", response_model=HandoffResponse)
async def handoff(body: HandoffRequest, key: PublicKeyDep, service: HandoffServiceDep) -> Any:
    return await service.request(key, body.session_id, "button", body.note)
