import json

from odoo import http
from odoo.http import request

from ..tools import payloads
from .signed_hook import error, signed_body

MAX_BODY_BYTES = 64 * 1024
STATES = ("queued", "processing", "ready", "failed")


class SourceStatusController(http.Controller):
    """Ingestion status callbacks from the engine (Standard Webhooks signed)."""

    @http.route(
        "/chatbot_platform/hooks/source-status",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def source_status(self):
        body, refused = signed_body(MAX_BODY_BYTES, "Status callbacks")
        if refused:
            return refused
        try:
            data = json.loads(body)
            source_uuid, chatbot_uuid = str(data["source"]), str(data["chatbot"])
            version, state = int(data["version"]), data["state"]
            chunks = data.get("chunks")
            chunks = int(chunks) if chunks is not None else None
            pages = data.get("pages")  # links: {indexed, skipped} of the last crawl
            if pages is not None:
                pages = {"indexed": int(pages["indexed"]), "skipped": int(pages["skipped"])}
            progress = data.get("progress")  # while processing: {done, total} chunks embedded
            if progress is not None:
                progress = (int(progress["done"]), int(progress["total"]))
            seq = data.get("seq")  # the engine's order of its statuses (absent from older engines)
            seq = int(seq) if seq is not None else None
        except (ValueError, KeyError, TypeError):
            return error(
                400, "invalid_body", "Expected {chatbot, source, version, state, chunks, error, pages, progress}."
            )
        if state not in STATES:
            return error(400, "invalid_body", "Unknown state.")
        # sudo: chatbot.document/chatbot.link - the caller is the engine, authenticated by the
        # signature above, not an Odoo user; only the source named by its UUID is touched
        source = request.env["chatbot.source.mixin"].sudo()._find_by_uuid(source_uuid)
        if not source or source.chatbot_id.uuid != chatbot_uuid:
            return error(404, "not_found", "Unknown source.")
        applied = source._apply_engine_status(
            version,
            state,
            chunks,
            (data.get("error") or None),
            payloads.parse_utc(data.get("indexed_at")),
            pages=pages,
            progress=progress,
            seq=seq,
        )
        return request.make_json_response({"ok": True, "applied": applied})
