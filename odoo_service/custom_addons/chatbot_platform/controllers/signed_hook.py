"""What every engine -> Odoo callback does first: cap the body, then check its signature."""

import logging

from odoo.http import request

from ..tools import webhooks

_logger = logging.getLogger(__name__)


def error(status, kind, detail):
    return request.make_json_response({"error": kind, "detail": detail}, status=status)


def signed_body(max_bytes, what):
    """`(body, None)` for a signed body of at most `max_bytes`, else `(None, error response)`.

    `what` names the callback in the answers and the log ("Status callbacks", "Handoff notices").
    """
    too_large = "%s are limited to %d KiB." % (what, max_bytes // 1024)
    if (request.httprequest.content_length or 0) > max_bytes:
        return None, error(413, "payload_too_large", too_large)
    body = request.httprequest.get_data(cache=False)
    if len(body) > max_bytes:  # no or a false Content-Length
        return None, error(413, "payload_too_large", too_large)
    try:
        secret = request.env["chatbot.outbox"]._webhook_secret()
    except ValueError:
        _logger.error("Chatbot engine callback refused (%s): WEBHOOK_SECRET is not configured", what)
        return None, error(503, "not_configured", "Odoo has no webhook secret configured.")
    try:
        webhooks.verify(secret, request.httprequest.headers, body)
    except webhooks.WebhookVerificationError:
        return None, error(401, "unauthorized", "Invalid or expired webhook signature.")
    return body, None
