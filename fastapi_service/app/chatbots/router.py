"""Internal API (Odoo -> engine): create/update/delete chatbots. Signed; thin."""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, ValidationError

from app.chatbots import service
from app.chatbots.schemas import Applied, ChatbotPut, VersionOnly
from app.deps import DbDep, EngineDep
from app.errors import Unprocessable
from app.internal.auth import InternalAuthDep

router = APIRouter(prefix="/internal/v1", tags=["internal"])
ModelT = TypeVar("ModelT", bound=BaseModel)


def parse(model: type[ModelT], payload: dict[str, Any]) -> ModelT:
    """Validate a signed payload; the first problem becomes a 422 sentence."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "body"
        raise Unprocessable(f"{loc}: {first['msg']}") from exc


@router.put("/chatbots/{chatbot_id}", response_model=Applied)
async def put_chatbot(chatbot_id: UUID, delivery: InternalAuthDep, db: DbDep, engine: EngineDep) -> Applied:
    body = parse(ChatbotPut, delivery.payload)
    applied = await service.put_chatbot(db, delivery.id, chatbot_id, body)
    engine.forget_chatbot(chatbot_id)  # e.g. new allowed domains apply to the next request
    return applied


@router.delete("/chatbots/{chatbot_id}", response_model=Applied)
async def delete_chatbot(chatbot_id: UUID, delivery: InternalAuthDep, db: DbDep, engine: EngineDep) -> Applied:
    body = parse(VersionOnly, delivery.payload)
    applied = await service.delete_chatbot(db, delivery.id, chatbot_id, body.version)
    engine.forget_chatbot(chatbot_id)
    return applied
