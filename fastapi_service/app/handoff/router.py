"""Public API: POST /v1/handoff, the widget's "talk to a person" button. Thin."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.deps import HandoffServiceDep
from app.errors import error_responses
from app.public.deps import PublicKeyDep
from app.wire import Text

router = APIRouter(prefix="/v1", tags=["public"], responses=error_responses(401, 403, 404, 413, 422, 429, 503))


class HandoffRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"session_id": "5f0c7a2e-1b3d-4c8e-9a6f-2d4b8e1c7f3a", "note": "Call me at +32 2 555 01 23"}]
        },
    )

    session_id: UUID
    note: Text | None = Field(None, max_length=2000, description="how to reach the visitor, or what they need")


class HandoffResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "session_id": "5f0c7a2e-1b3d-4c8e-9a6f-2d4b8e1c7f3a",
                    "message": "A person from our team will get back to you.",
                }
            ]
        }
    )

    session_id: UUID
    message: str  # what the widget tells the visitor happens next


@router.post("/handoff", response_model=HandoffResponse)
async def handoff(body: HandoffRequest, key: PublicKeyDep, service: HandoffServiceDep) -> Any:
    return await service.request(key, body.session_id, "button", body.note)
