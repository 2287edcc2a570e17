"""Internal API (Odoo -> engine): upsert/delete/list a chatbot's sources. Signed; thin.

PUT answers 202 `{applied: true, job}` once the desired version and its job are committed;
ignored deliveries answer 200 `{applied: false, reason, detail}` with reason `stale_version`,
`duplicate_delivery` or `chatbot_deleted` (docs/contract.md#status-codes).
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from app.chatbots.router import parse
from app.chatbots.schemas import VersionOnly
from app.deps import DbDep, SettingsDep
from app.internal.auth import InternalAuthDep
from app.sources import service
from app.sources.schemas import SourceAccepted, SourcePut, SourceStatus

router = APIRouter(prefix="/internal/v1", tags=["internal"])


@router.put("/chatbots/{chatbot_id}/sources/{source_id}", response_model=SourceAccepted, status_code=202)
async def put_source(
    chatbot_id: UUID, source_id: UUID, delivery: InternalAuthDep, db: DbDep, settings: SettingsDep, response: Response
) -> SourceAccepted:
    body = parse(SourcePut, delivery.payload)
    result = await service.put_source(db, settings, delivery.id, chatbot_id, source_id, body)
    if not result.applied:
        response.status_code = 200
    return result


@router.delete("/chatbots/{chatbot_id}/sources/{source_id}", response_model=SourceAccepted)
async def delete_source(chatbot_id: UUID, source_id: UUID, delivery: InternalAuthDep, db: DbDep) -> SourceAccepted:
    body = parse(VersionOnly, delivery.payload)
    return await service.delete_source(db, delivery.id, chatbot_id, source_id, body.version)


@router.get("/chatbots/{chatbot_id}/sources", response_model=list[SourceStatus])
async def list_sources(chatbot_id: UUID, _: InternalAuthDep, db: DbDep) -> list[SourceStatus]:
    return await service.list_sources(db, chatbot_id)
