"""Builders for the JSON bodies of the engine's internal API (see docs/odoo_addon.md).

They take plain values so that the exact wire shape is testable without a database.
"""

from datetime import datetime, timezone

# The contract's defaults and limits (contract/defaults.json, docs/contract.md#defaults): the addon
# cannot read that file at run time (its image is built from odoo_service/ alone), so its tests
# check these constants against it, as the engine's tests check the engine's.
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer only from the provided context. "
    "If the context does not contain the answer, say that you do not know."
)
DEFAULT_USER_TEMPLATE = "Context:\n{context}\n\nQuestion: {question}"
DEFAULT_LANGUAGE = "en"
DEFAULT_TEMPERATURE = 0.2
DEFAULT_MAX_TOKENS = 512
DEFAULT_TOP_K = 5
# inclusive bounds of the generation settings (the engine's schema has the same)
TEMPERATURE_RANGE = (0, 2)
MAX_TOKENS_RANGE = (16, 8192)
TOP_K_RANGE = (1, 50)
DEFAULT_WIDGET_COLOR = "#4F46E5"
DEFAULT_WIDGET_WELCOME = "Hi! Ask me anything about our documents."
MAX_DOCUMENT_BYTES = 25 * 1024 * 1024  # the engine's MAX_DOCUMENT_BYTES default


def split_lines(text):
    """Non-empty, stripped lines (commas also separate) of a free-text field."""
    items = []
    for line in (text or "").replace(",", "\n").splitlines():
        line = line.strip()
        if line and line not in items:
            items.append(line)
    return items


def parse_utc(value):
    """ISO-8601 from the engine to Odoo's naive UTC datetime; None when absent or unreadable."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed.replace(microsecond=0)


def iso_utc(value):
    """ISO-8601 UTC for a naive UTC datetime (Odoo's convention), or None."""
    if not value:
        return None
    return value.replace(microsecond=0).isoformat() + "Z"


def api_key_entry(key_uuid, kind, prefix, sha256, expires_at):
    return {
        "id": key_uuid,
        "kind": kind,
        "prefix": prefix,
        "sha256": sha256,
        "expires_at": iso_utc(expires_at),
    }


def chatbot_payload(
    *,
    version,
    tenant,
    name,
    active,
    language,
    system_prompt,
    user_template,
    model,
    temperature,
    max_tokens,
    top_k,
    allowed_domains,
    api_keys,
    key_per_minute,
    ip_per_minute,
    widget_title,
    widget_color,
    widget_welcome,
    widget_suggestions,
    handoff_enabled=False,
    handoff_phrases="",
    handoff_message="",
):
    return {
        "version": version,
        "tenant": tenant,
        "name": name,
        "active": bool(active),
        "language": language,
        "prompts": {
            "system": system_prompt or DEFAULT_SYSTEM_PROMPT,
            "user_template": user_template or DEFAULT_USER_TEMPLATE,
        },
        "generation": {
            "model": model or None,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "top_k": top_k,
        },
        "allowed_domains": split_lines(allowed_domains),
        "api_keys": api_keys,
        "rate_limits": {
            "key_per_minute": key_per_minute or None,
            "ip_per_minute": ip_per_minute or None,
        },
        "widget": {
            "title": widget_title or name,
            "color": widget_color or DEFAULT_WIDGET_COLOR,
            "welcome": widget_welcome or "",
            "suggestions": split_lines_only(widget_suggestions),
            # handoff to a human; an empty message lets the engine say its default
            "handoff_enabled": bool(handoff_enabled),
            "handoff_phrases": split_lines_only(handoff_phrases),
            "handoff_message": handoff_message or "",
        },
    }


def split_lines_only(text):
    """Non-empty lines; suggestions may contain commas, so only newlines separate them."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def document_payload(*, version, name, filename, mimetype, sha256):
    """The stored form; the sender adds ``document.content_base64`` at delivery time."""
    return {
        "version": version,
        "kind": "document",
        "name": name,
        "document": {"filename": filename, "mimetype": mimetype, "sha256": sha256},
    }


# A link's crawl limits (contract/defaults.json): the engine's CRAWL_MAX_DEPTH / CRAWL_MAX_PAGES
# defaults, which it enforces (a link asking for more fails there with the reason); Odoo refuses
# more before sending.
CRAWL_MAX_DEPTH = 3
CRAWL_MAX_PAGES = 200


def link_payload(*, version, name, url, max_depth, max_pages, refresh_hours):
    return {
        "version": version,
        "kind": "link",
        "name": name,
        "link": {
            "url": url,
            "max_depth": max_depth,
            "max_pages": max_pages,
            "refresh_hours": refresh_hours or None,
        },
    }


def delete_payload(version):
    return {"version": version}
